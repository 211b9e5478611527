"""`scripts/onboard --from customers.csv`: many customers at once, read exactly as docs/operations/onboarding.md
describes the file.

A header row names the columns: `customer` and `subscriptions` are required, `approval`, `service`, `provider`,
`contract` and `stack` optional, any other is refused (a misspelt column would otherwise be silently ignored). Each
further line is one customer; blank lines are skipped, and every problem names the file's line as an editor counts
it. The file is UTF-8 (a byte order mark, which spreadsheets write, is accepted), at most MAX_BYTES and MAX_ROWS.
"""

from __future__ import annotations

import csv
import difflib
import io
from dataclasses import dataclass
from pathlib import Path

from operations.exits import CannotStartError
from pls.config.files import KIB, FileRefusedError, read_text

COLUMNS = ("customer", "subscriptions", "approval", "service", "provider", "contract", "stack")
REQUIRED = ("customer", "subscriptions")
CHOICES = {"approval": ("auto", "manual"), "stack": ("yes", "no")}
"""The values a column takes (empty: the default, manual and yes)."""
MAX_BYTES = 16 * KIB * KIB
MAX_ROWS = 10_000


@dataclass(frozen=True)
class Row:
    """One customer as the file gives it, with the line it is on."""

    line: int
    values: dict[str, str]

    def get(self, column: str) -> str:
        return self.values.get(column, "")


def _refused(where: str, problem: str, fix: str) -> CannotStartError:
    return CannotStartError(f"{where}: {problem}. Fix: {fix}")


def _header(header: list[str], name: str) -> list[str]:
    columns = [column.strip() for column in header]
    for column in columns:
        if column not in COLUMNS:
            guess = difflib.get_close_matches(column[:40], COLUMNS, n=1)
            hint = f"did you mean {guess[0]}?" if guess else f"the columns are {', '.join(COLUMNS)}"
            raise _refused(f"{name} line 1", f"has a column {column[:40]!r} that is not one", hint)
    twice = sorted({column for column in columns if columns.count(column) > 1})
    if twice:
        raise _refused(f"{name} line 1", f"names the column {twice[0]} twice", "keep one")
    missing = [column for column in REQUIRED if column not in columns]
    if missing:
        raise _refused(
            f"{name} line 1",
            f"is not a header with {' and '.join(REQUIRED)} (missing: {', '.join(missing)})",
            f"start the file with a header row, e.g. {','.join(COLUMNS)}",
        )
    return columns


def read_rows(path: Path) -> list[Row]:
    """The file's customers, or a CannotStartError naming the file, the line, the problem and the fix."""
    name = path.name
    try:
        text = read_text(path, where=name, limit=MAX_BYTES)
    except FileRefusedError as refused:
        raise CannotStartError(str(refused)) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next((row for row in reader if any(cell.strip() for cell in row)), None)
        if header is None:
            raise _refused(
                name, "has no header and no customers", f"write a header ({','.join(COLUMNS)}) and a row each"
            )
        columns = _header(header, name)
        rows: list[Row] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # a blank line
            where = f"{name} line {reader.line_num}"
            if len(cells) != len(columns):
                raise _refused(where, f"has {len(cells)} fields, the header {len(columns)}", "one value per column")
            if len(rows) >= MAX_ROWS:
                raise _refused(where, f"is past the {MAX_ROWS:,} customers one file may onboard", "split the file")
            values = {column: cell.strip() for column, cell in zip(columns, cells, strict=True)}
            for column, choices in CHOICES.items():
                if values.get(column, "") not in ("", *choices):
                    raise _refused(
                        where,
                        f"has {column} {values[column][:40]!r}",
                        f"write {' or '.join(choices)}, or leave it empty",
                    )
            rows.append(Row(reader.line_num, values))
    except csv.Error as error:
        raise _refused(f"{name} line {reader.line_num}", f"is not CSV ({error})", "fix its quoting") from None
    if not rows:
        raise _refused(name, "has a header but no customers", "add a row per customer")
    return rows
