"""Tables a person can act on: the ids in them (accounts, tasks, courses, CSMs, stages) are
never cut, whatever the width; free text wraps instead. When the output is not a terminal (a
pipe, a file) the rows come plain: the title, then a header and one line per row, cells
separated by tabs and whole (`starter.py list | grep ACCOUNT`, `cut -f1`)."""

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
        if console.is_terminal:
            console.print(self.table())
            return
        lines = [self.title] if self.title else []
        lines.append("\t".join(self.columns))
        lines += ["\t".join(Text.from_markup(cell).plain for cell in row) for row in self.rows]
        # Straight to the file: rich would expand the tabs into spaces.
        console.file.write("".join(f"{line}\n" for line in lines))

    def table(self) -> Table:
        table = Table(title=self.title, title_justify="left", box=box.HEAVY_HEAD)
        for n, name in enumerate(self.columns):
            if name in self.ids:
                widest = max([Text.from_markup(row[n]).cell_len for row in self.rows] + [len(name)])
                table.add_column(name, no_wrap=True, min_width=widest)
            else:
                table.add_column(name, overflow="fold")
        for row in self.rows:
            table.add_row(*row)
        return table
