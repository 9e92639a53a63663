"""``write_results`` is atomic and leaves nothing behind when it cannot finish."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from stressor.report.results import write_results


def test_the_document_is_written_whole(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "results.json"
    write_results(out, {"schema": "stressor.results/1", "runs": {"planned": 3}})
    assert orjson.loads(out.read_bytes())["runs"] == {"planned": 3}
    assert sorted(p.name for p in out.parent.iterdir()) == ["results.json"]


def test_a_failed_rename_removes_its_temporary_file(tmp_path: Path) -> None:
    taken = tmp_path / "results.json"
    taken.mkdir()  # a directory where the file should go: the rename fails after the temporary was written
    (taken / "keep").write_text("x")
    with pytest.raises(OSError):
        write_results(taken, {"schema": "stressor.results/1"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # no .results.json.tmp left
    assert (taken / "keep").read_text() == "x"
