"""The simulator (``python -m stressor.sim``, same flags) with a run list that costs O(page) to answer, as a
database with an index on creation answers it: ``benchmarks/peers.py --indexed`` starts it in place of the
simulator, so that the server is not the limit of a benchmark whose clients read deep into the list.

The simulator's own list skips ``offset`` items one by one (O(offset + page)), which is right for a reference
and its switches, and slow at 10,000 runs deep. Here, for the docs' reading only (newest first, ``offset``
honoured, no page cap, no filter), a page is cut out of a list of run ids kept in creation order; any other
request goes to the simulator's own code.
"""

from __future__ import annotations

import runpy
from typing import Any

from stressor.sim.model import SimModel

_own_list_runs = SimModel.list_runs
_INDEX = "_benchmark_ids"  # run ids in creation order, kept on the model (runs are never deleted)


def list_runs(self: SimModel, *, limit: int = 50, offset: int = 0, **filters: Any) -> list[Any]:
    config = self.config
    plain = config.list_order == "newest" and config.list_offset == "honoured" and config.page_cap is None
    if not plain or any(value is not None for value in filters.values()):
        return _own_list_runs(self, limit=limit, offset=offset, **filters)
    runs = self._runs
    ids: list[Any] = self.__dict__.setdefault(_INDEX, [])
    if len(ids) < len(runs):  # the runs created since: the newest keys of the (insertion-ordered) dict
        fresh = [run_id for _, run_id in zip(range(len(runs) - len(ids)), reversed(runs), strict=False)]
        ids.extend(reversed(fresh))
    newest = len(ids) - 1 - max(0, offset)
    return [runs[ids[i]] for i in range(newest, max(-1, newest - limit), -1)]


SimModel.list_runs = list_runs  # type: ignore[method-assign]

if __name__ == "__main__":
    runpy.run_module("stressor.sim", run_name="__main__", alter_sys=True)
