"""One set of exit codes (``stressor.running.ExitCode``): the README's table and ``stressor --help`` say the same,
and no command exits with a number of its own."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from stressor.cli.app import app
from stressor.running import ExitCode

ROOT = Path(__file__).parent.parent


def readme_exit_codes() -> dict[int, str]:
    """The README's "Exit codes" table: code -> meaning, without Markdown's backticks."""
    section = ROOT.joinpath("README.md").read_text().split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", section, flags=re.MULTILINE)
    return {int(code): meaning.replace("`", "") for code, meaning in rows}


def test_the_readme_table_has_every_exit_code_and_only_those() -> None:
    assert sorted(readme_exit_codes()) == sorted(ExitCode)


def test_the_readme_says_each_code_means_what_the_enum_says() -> None:
    table = readme_exit_codes()
    for code in ExitCode:
        assert table[code].startswith(code.meaning), f"README, exit code {code}: {table[code]!r}"


def test_stressor_help_ends_with_every_exit_code_and_its_meaning() -> None:
    done = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200", "TERM": "dumb"})
    assert done.exit_code == 0, done.output
    shown = " ".join(re.sub(r"[│╭╮╰╯─]", " ", done.output).split())
    listed = " ".join(f"{code.value}: {code.meaning}" for code in ExitCode)
    assert f"Exit codes: {listed}" in shown


def test_no_command_exits_with_a_number_of_its_own() -> None:
    # typer.Exit and sys.exit get an ExitCode (or a value of one), never a literal; no module keeps EXIT_ constants
    for path in ROOT.joinpath("stressor").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"(typer\.Exit|sys\.exit|SystemExit)\(\d", text), path
        assert not re.search(r"^EXIT_\w+ = ", text, flags=re.MULTILINE), path
