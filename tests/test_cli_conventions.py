"""The command line's conventions, as a user meets them: ``--version``; examples in every command's ``--help``
that parse as written; placeholders that say what to give (choices as choices, never a Python type); usage
errors in one plain sentence (``stressor: ...``, exit 2) like every other error; shell completion; and the
runs log's flush interval said the same, true way in ``--help`` and the README."""

from __future__ import annotations

import re
import shlex
from importlib.metadata import version
from pathlib import Path

import pytest
import typer
from support.cli import stressor_here
from typer.core import TyperGroup
from typer.testing import CliRunner

from stressor.cli.app import app
from stressor.runlog import FLUSH_EVERY_S

ROOT = Path(__file__).parent.parent
COMMANDS = ("run", "check", "plan", "sim", "report", "compare", "capacity")
ENV = {"COLUMNS": "200", "TERM": "dumb"}
SMOKE = str(ROOT / "profiles" / "smoke.toml")


def _help(*args: str) -> str:
    done = CliRunner().invoke(app, [*args, "--help"], env=ENV)
    assert done.exit_code == 0, done.output
    return done.output


def _group() -> TyperGroup:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    return group


def _examples(help_text: str) -> list[str]:
    """The example command lines at the end of a --help."""
    tail = help_text.split("Examples:", 1)[1]
    lines = [line.strip() for line in tail.splitlines()]
    return [line for line in lines if re.match(r"^(\w+=\S+ )*stressor ", line)]


def test_version_prints_the_installed_version() -> None:
    done = stressor_here("--version")
    assert done.returncode == 0
    assert done.stdout == f"stressor {version('stressor')}\n"


@pytest.mark.parametrize("name", ["", *COMMANDS])
def test_every_help_ends_with_examples_that_parse_as_written(name: str) -> None:
    examples = _examples(_help(*([name] if name else [])))
    assert examples, f"stressor {name} --help has no example"
    for example in examples:
        words = [w for w in shlex.split(example) if not re.match(r"^\w+=", w)]  # VAR=value before the command
        assert words[0] == "stressor"
        if name:
            assert words[1] == name, example
        command = _group().commands[words[1]]
        # Parsing converts and checks every flag (choices, numbers) without running the command.
        command.make_context(words[1], words[2:])


@pytest.mark.parametrize("name", COMMANDS)
def test_no_placeholder_shows_a_python_type(name: str) -> None:
    shown = _help(name)
    for python_type in ("<str>", "<int>", "<float>", "<bool>", "<path>", "<text>", "list[", "range>", "<tuple"):
        assert python_type not in shown, python_type


@pytest.mark.parametrize(
    ("args", "flag", "choices"),
    [
        (["run"], "--mode", "obey|stress"),
        (["capacity"], "--model", "closed|open"),
        (["capacity"], "--mode", "obey|stress"),
        (["sim"], "--list-order", "newest|oldest"),
        (["sim"], "--rate-limit-headers", "none|x-ratelimit|x-ratelimit-epoch|ietf"),
        (["sim"], "--grade-scale", "100|1"),
        (["compare"], "--format", "text|json|markdown"),
    ],
)
def test_fixed_choices_are_shown_as_choices(args: list[str], flag: str, choices: str) -> None:
    line = next(line for line in _help(*args).splitlines() if f" {flag} " in line)
    assert choices in line


def _options(name: str) -> dict[str, str]:
    command = _group().commands[name]
    return {max(p.opts, key=len): p.help or "" for p in command.params if p.param_type_name == "option"}


def test_capacity_takes_the_flags_of_run_that_apply_to_a_step_with_the_same_help() -> None:
    run, capacity = _options("run"), _options("capacity")
    shared = {
        "--poll-interval", "--grace", "--mode", "--create-rate", "--poll-rate", "--max-runs-in-flight",
        "--max-batches-in-flight", "--sim-slots", "--sim-failure-rate", "--sim-call-duration", "--sim-time-scale",
        "--sim-seed",
    }  # fmt: skip
    assert shared <= set(capacity)
    for flag in shared:
        assert capacity[flag] == run[flag], flag
    # taken too, with the meaning they have for a search
    assert {"--threshold", "--junit", "--html", "--out", "--base-url", "--api-key"} <= set(capacity)


def test_the_root_help_offers_version_and_shell_completion() -> None:
    shown = _help()
    for flag in ("--version", "--install-completion", "--show-completion"):
        assert flag in shown


def test_shell_completion_completes_commands_and_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    # typer finds the shell among the process's parents (shellingham): pytest started by no shell finds none
    monkeypatch.setattr("shellingham.detect_shell", lambda: ("bash", "/bin/bash"))
    script = CliRunner().invoke(app, ["--show-completion", "bash"], prog_name="stressor", env=ENV)
    assert script.exit_code == 0 and "_stressor_completion" in script.output, (script.output, script.exception)
    complete = {"_STRESSOR_COMPLETE": "complete_bash", **ENV}
    commands = CliRunner().invoke(app, [], prog_name="stressor", env={**complete, "COMP_WORDS": "stressor ca",
                                                                       "COMP_CWORD": "1"})  # fmt: skip
    assert commands.output.split() == ["capacity"]
    modes = CliRunner().invoke(app, [], prog_name="stressor", env={**complete, "COMP_WORDS": "stressor run p --mode ",
                                                                    "COMP_CWORD": "4"})  # fmt: skip
    assert modes.output.split() == ["obey", "stress"]


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["run", "p.toml", "--mode", "fast"], "--mode must be obey or stress, not 'fast'"),
        (["capacity", "p.toml", "--model", "half-open"], "--model must be closed or open, not 'half-open'"),
        (["sim", "--list-order", "random"], "--list-order must be newest or oldest, not 'random'"),
        (["compare", "a.json", "b.json", "--format", "xml"], "--format must be text, json or markdown, not 'xml'"),
        (["run"], "missing PROFILE (see 'stressor run --help')"),
        (["runn"], "no such command 'runn'; did you mean 'run'? (see 'stressor --help')"),
        (["run", "p.toml", "--hlg", "x"], "no such option --hlg; did you mean --help, --hlog or --html? (see"),
        (["run", "p.toml", "--out"], "option '--out' requires an argument"),
        (["run", SMOKE, "--base-url", "ftp://x"], "--base-url: must be an http:// or https:// URL"),
        (["run", "p.toml", "--progress", "-1"], "--progress: "),
        (["plan"], "missing PROFILE"),
    ],
)
def test_usage_errors_are_one_plain_sentence_exit_2(args: list[str], sentence: str) -> None:
    done = stressor_here(*args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"stressor: {sentence}")
    assert not re.search(r"[│╭╮╰╯─]|Usage:|Error", done.stderr)
    assert done.stdout == ""


def test_the_embedded_simulators_own_entry_point_says_errors_the_same_way(capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    from stressor.cli import sim

    argv = sys.argv
    sys.argv = ["python -m stressor.sim", "--ids", "uuid"]
    try:
        with pytest.raises(SystemExit) as exited:
            sim.main()
    finally:
        sys.argv = argv
    assert exited.value.code == 2
    assert capsys.readouterr().err == "stressor: --ids must be int or string, not 'uuid'\n"


def test_no_arguments_prints_the_help() -> None:
    done = CliRunner().invoke(app, [], env=ENV)
    assert done.exit_code == 2
    assert "Usage: stressor" in done.output and "Commands" in done.output


def test_help_and_readme_say_the_runs_log_is_flushed_every_half_second() -> None:
    assert FLUSH_EVERY_S == 0.5  # what both say
    shown = " ".join(re.sub(r"[│╭╮╰╯─]", " ", _help("run")).split())
    assert "flushed every half second" in shown
    readme = " ".join(ROOT.joinpath("README.md").read_text().split())
    said = re.findall(r"flushed every [a-z ]+? second", readme)
    assert said and set(said) == {"flushed every half second"}, said
    assert "flushed every second" not in shown
