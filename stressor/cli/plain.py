"""How the command line looks: usage errors in stressor's one style (``stressor: <sentence>``, exit 2, not
typer's boxed panel), and option placeholders that name what to give (``DURATION``, ``obey|stress``), never a
Python type (``<str>``, ``<list[str]>``) nor ``<bool>`` on a flag."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

from stressor.running import ExitCode

PREFIX = "stressor"

# typer raises click's exceptions (its own copy of click since 0.2x, click itself before): reached through
# the one typer exports, so that either is caught.
_CLICK_ERROR: type[Exception] = next(k for k in typer.BadParameter.__mro__ if k.__name__ == "ClickException")

# Placeholders by annotation for an option declared without a metavar (a flag another change adds).
_PLACEHOLDERS = {"int": "N", "float": "NUMBER", "Path": "PATH", "str": "TEXT"}


def _choices(param: Any) -> list[str] | None:
    """The fixed choices of a parameter (a Literal or an Enum), or None."""
    descriptor = getattr(param, "type_descriptor", None)  # typer >= 0.2x
    choices = getattr(descriptor, "choices", None) if descriptor is not None else None
    if choices is None:
        choices = getattr(getattr(param, "type", None), "choices", None)  # click's Choice
    if not choices:
        return None
    return [str(getattr(choice, "value", choice)) for choice in choices]


def _name(param: Any) -> str:
    """How the user wrote the parameter: its longest flag, or an argument's metavar."""
    opts = [o for o in getattr(param, "opts", ()) if o.startswith("-")]
    if opts:
        return max(opts, key=len)
    return str(param.metavar or param.name).upper()


def _or(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _sentence(message: str) -> str:
    """click's messages as part of one sentence: lower case first, no inner full stops."""
    message = message.strip().removeprefix("Value error, ").rstrip(".")
    parts = [part[:1].lower() + part[1:] for part in message.split(". ")]
    return "; ".join(parts)


def usage_sentence(error: Exception) -> str:
    """A usage error as one sentence (without the ``stressor:`` prefix)."""
    ctx = getattr(error, "ctx", None)
    see = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    kind = type(error).__name__
    param = getattr(error, "param", None)
    if kind == "MissingParameter" and param is not None:
        return f"missing {_name(param)}{see}"
    if isinstance(error, typer.BadParameter):
        hint = error.param_hint
        name = (hint if isinstance(hint, str) else " / ".join(hint)) if hint else None
        if name is None and param is not None:
            name = _name(param)
        choices = _choices(param) if param is not None else None
        if choices is not None and name is not None:
            given = getattr(error, "message", "")
            quoted = given.split("'")[1] if given.count("'") >= 2 else None
            got = f", not {quoted!r}" if quoted is not None else ""
            return f"{name} must be {_or(choices)}{got}"
        text = _sentence(error.message)
        return f"{name}: {text}" if name else text
    if kind == "NoSuchOption" and getattr(error, "possibilities", None):
        option = getattr(error, "option_name", "")
        close = _or(sorted(error.possibilities))  # type: ignore[attr-defined]
        return f"no such option {option}; did you mean {close}?{see}"
    return _sentence(getattr(error, "message", str(error))) + see


def _exit_plainly(run: Any) -> NoReturn:
    """Run a command line; a usage error said in one sentence on stderr, exit 2."""
    try:
        code = run()
    except _CLICK_ERROR as error:
        if type(error).__name__ == "NoArgsIsHelpError":
            # the help was printed as the error was made (rich) or is its message (plain click)
            text = getattr(error, "message", "")
            if text.strip():
                typer.echo(text, err=True)
            sys.exit(ExitCode.USAGE)
        typer.echo(f"{PREFIX}: {usage_sentence(error)}", err=True)
        sys.exit(ExitCode.USAGE)
    except typer.Abort:  # input ended (Ctrl-D) where a command asked for it
        typer.echo(f"{PREFIX}: aborted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)


def _placeholders(params: list[Any]) -> list[Any]:
    """Flags show no type; an option without a metavar shows what kind of value it takes (choices are shown by
    typer as ``<a|b>``)."""
    for param in params:
        if param.param_type_name == "argument" and hasattr(param, "display_type_rich"):
            # typer >= 0.2x shows an argument's type beside its name ("PROFILE <path>"): the name says it
            param.display_type_rich = lambda ctx: None
            continue
        if param.param_type_name != "option" or param.metavar is not None:
            continue
        if getattr(param, "is_flag", False):
            param.metavar = ""
        elif _choices(param) is None:
            annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
            param.metavar = _PLACEHOLDERS.get(getattr(annotation, "__name__", ""), "TEXT")
    return params


class PlainCommand(TyperCommand):
    """A command whose usage errors are one plain sentence and whose help shows no Python types."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _placeholders(super().get_params(ctx))

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        _exit_plainly(lambda: super(PlainCommand, self).main(*args, standalone_mode=False, **kwargs))


class PlainGroup(TyperGroup):
    """The ``stressor`` group, with the same errors and placeholders as its commands."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _placeholders(super().get_params(ctx))

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        _exit_plainly(lambda: super(PlainGroup, self).main(*args, standalone_mode=False, **kwargs))
