"""Every command's --help explains every flag, as rendered (Rich markup must not eat bracketed words)."""

from __future__ import annotations

import re

import pytest
import typer
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from stressor.cli.app import app

COMMANDS = ("run", "check", "plan", "sim", "report", "compare", "capacity")


def _plain(text: str) -> str:
    # The rendered help wraps lines inside a box: drop the box characters and join the words.
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def _unescaped(text: str) -> str:
    # Help strings escape Rich markup as \\[word]; the user reads [word].
    return " ".join(text.replace("\\[", "[").split())


def test_there_are_seven_commands() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    assert set(group.commands) == set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_flag_and_its_whole_help_text_appear_in_the_rendered_help(name: str) -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    command = group.commands[name]
    done = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "200", "TERM": "dumb"})
    assert done.exit_code == 0, done.output
    shown = _plain(done.output)
    options = [p for p in command.params if isinstance(p, TyperOption) and not p.hidden]
    assert options
    for option in options:
        assert option.help, f"{name} {option.opts[0]} has no help"
        for flag in option.opts:
            assert flag in shown, f"{name}: {flag} missing from --help"
        assert _unescaped(option.help) in shown, f"{name} {option.opts[0]}: help text not shown whole"
