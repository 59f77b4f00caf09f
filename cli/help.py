"""`--help` in a person's words: `--by WHO`, not `--by <str>`; `starter.py signal ACCOUNT
MILESTONE`, not `{account} {milestone}`; the choices of an option said in its help, where
they wrap between words.

Typer (0.29) shows every parameter's Python type and puts braces round required arguments;
the commands and groups here are built from these classes instead (`App.command` picks them),
which give each parameter a name to show: the `metavar` the option declares, else its own
name in capitals (arguments too); flags show none. Imported for `--help`: typer only."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import typer
from typer import _click as click
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


class _Argument(TyperArgument):
    """An argument shown by its name alone: `ACCOUNT`, `[NOTE]`, `ADDRESSES...`."""

    def display_type_rich(self, ctx: click.Context) -> str | None:
        return None

    def get_usage_pieces(self, ctx: click.Context) -> list[str]:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return [name + ("..." if self.nargs != 1 else "")]


def _tidy(param: click.Parameter, ctx: click.Context) -> None:
    if getattr(param, "_tidy", False):
        return
    param._tidy = True  # type: ignore[attr-defined]
    if isinstance(param, TyperArgument):
        param.__class__ = _Argument  # same fields; only how it is shown differs
    if isinstance(param, TyperOption) and (param.is_flag or param.count):
        param.metavar = ""  # a flag takes no value: nothing to show after it
        return
    if not isinstance(param, TyperArgument | TyperOption):
        return
    name = max(param.opts, key=len).lstrip("-") if isinstance(param, TyperOption) else param.name
    if param.type_descriptor.is_choice:
        choices = param.display_type(ctx).strip("<>").split("|")
        if param.metavar is None and len("|".join(choices)) <= _SHORT_CHOICES:
            param.metavar = "|".join(choices)
        help_text = param.help or ""
        if param.metavar != "|".join(choices) and not all(c in help_text for c in choices):
            # Said in the help, where a long list wraps between words.
            param.help = f"{help_text} One of: {', '.join(choices)}.".strip()
    if param.metavar is None:
        param.metavar = (name or "value").upper().replace("-", "_")


# A list of choices up to this long is shown as the option's value (`--risk low|medium|high`).
_SHORT_CHOICES = 20


def _unwrapped(text: str | None) -> str | None:
    """A docstring's paragraphs each on one line: the help panels wrap them to the terminal,
    and kept line breaks would cut sentences in the middle of a line."""
    if text is None:
        return None
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


class _CleanHelp(click.Command):
    """What commands and groups share: unwrapped docstrings, tidied parameters."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = _unwrapped(self.help)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        for param in params:
            _tidy(param, ctx)
        return params


class Command(_CleanHelp, TyperCommand):
    pass


class Group(_CleanHelp, TyperGroup):
    pass


class App(typer.Typer):
    """A Typer app whose commands and sub-groups show clean help (see the module)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cls=Group, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        kwargs.setdefault("cls", Command)
        return super().command(*args, **kwargs)
