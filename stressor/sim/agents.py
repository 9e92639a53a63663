"""What a change of an agent's prompt does to each scenario, decided by the scenario's prompt alone.

Version 1 is an agent's baseline. Under any later version (``SimConfig.agent_versions``) about a third of the
scenario prompts are ``regressed`` (the agent misunderstands: other lines, grades well below the baseline,
outcomes mostly ``failure``), a third ``reworded`` (other lines, grades and outcomes as before) and the rest
``unchanged`` (the very same lines). Which is which depends only on (version, prompt), never on the seed, so
the regression workflow shows the same scenarios changed every time.
"""

from __future__ import annotations

from typing import Literal

from stressor.sim.draws import stable_fraction

Change = Literal["unchanged", "reworded", "regressed"]
CHANGES: tuple[str, ...] = ("unchanged", "reworded", "regressed")

#: Added to the 0..1 score of a regressed scenario's calls: from the default median 0.85 to about 0.45,
#: below the 0.6 under which a call's outcome is ``failure``.
REGRESSED_GRADE_SHIFT = -0.4


def prompt_change(prompt: str, version: int) -> Change:
    """How an agent at ``version`` answers the scenario ``prompt`` compared with its version 1."""
    if version <= 1:
        return "unchanged"
    where = stable_fraction("change", version, prompt)
    if where < 1 / 3:
        return "regressed"
    return "reworded" if where < 2 / 3 else "unchanged"
