"""Tables a person can act on: the ids in them (accounts, tasks, courses, CSMs, stages) are
never cut, whatever the width; free text wraps instead. When stdout is not a terminal (a
pipe, a file) the rows come plain, one per line, so `starter.py list | grep ACCOUNT` works."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text


@dataclass
class Rows:
    """Columns by name; `ids` names those that hold something a user types next."""

    columns: Sequence[str]
    ids: set[str]
    title: str | None = None
    rows: list[Sequence[str]] = field(default_factory=list)

    def add(self, *cells: str) -> None:
        self.rows.append(cells)

    def print(self, console: Console) -> None:
        console.print(self.table(plain=not console.is_terminal))

    def table(self, plain: bool = False) -> Table:
        table = Table(
            title=self.title,
            title_justify="left",
            box=None if plain else box.HEAVY_HEAD,
            show_edge=not plain,
            pad_edge=not plain,
        )
        for n, name in enumerate(self.columns):
            if name in self.ids:
                widest = max([Text.from_markup(row[n]).cell_len for row in self.rows] + [len(name)])
                table.add_column(name, no_wrap=True, min_width=widest)
            else:
                table.add_column(name, overflow="fold")
        for row in self.rows:
            table.add_row(*row)
        return table
