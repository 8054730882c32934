"""Result tables: CSV files that rows are appended to as points finish, keyed by a ``key``
column, read back on a rerun to skip finished points; and a Parquet copy when pyarrow is
installed.

Each row is one physical line (text cells are flattened to one line), so a run killed in
the middle of a write leaves at most a partial last line, which the next open drops. A row
that brings new columns (a synthesis report's fields, say) rewrites the file once with the
wider header; rows without a column leave it empty.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path
from typing import Any

# Columns that stay text when read back (everything else is parsed as a number or bool when it looks like one).
TEXT_COLUMNS = frozenset({"key", "config_key", "workload", "kind", "target", "status", "error", "config_name",
                          "tiling", "family"})
_INT = re.compile(r"[-+]?\d+")


def cell(value: Any) -> str:
    """A value as CSV text: None empty, floats exactly (repr), text on one line."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return " ".join(str(value).split()) if isinstance(value, str) else str(value)


def parse_cell(column: str, text: str) -> Any:
    """The value a `cell` wrote: None, bool, int, float, or text."""
    if text == "":
        return None
    if column in TEXT_COLUMNS:
        return text
    if text in ("True", "False"):
        return text == "True"
    if _INT.fullmatch(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def typed(row: dict[str, str]) -> dict[str, Any]:
    """A row read back from CSV with its values parsed."""
    return {k: parse_cell(k, v) for k, v in row.items()}


class Table:
    """A CSV file of rows with a unique ``key`` (a rewritten key's last row wins).

    ``rows`` maps key to the row's text cells; `append` writes a row to the file and flushes
    it before returning, so what a killed run finished is on disk.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.columns: list[str] = []
        self.rows: dict[str, dict[str, str]] = {}
        self.dropped = 0  # partial or malformed lines found on opening
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        text = self.path.read_text()
        if text and not text.endswith("\n"):  # killed mid-write: the last line is partial
            text = text[: text.rfind("\n") + 1]
            self.dropped += 1
        reader = csv.DictReader(io.StringIO(text))
        self.columns = list(reader.fieldnames or [])
        for r in reader:
            if None in r or None in r.values() or not r.get("key"):
                self.dropped += 1
                continue
            self.rows[r["key"]] = r
        if self.dropped:
            self._rewrite()

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, key: str) -> dict[str, Any] | None:
        """The row of ``key`` with parsed values, or None."""
        r = self.rows.get(key)
        return None if r is None else typed(r)

    def append(self, row: dict[str, Any]) -> None:
        """Write ``row`` (which has a ``key``) at the end of the file, now."""
        cells = {k: cell(v) for k, v in row.items()}
        key = cells["key"]
        new = [k for k in cells if k not in self.columns]
        replaced = key in self.rows
        self.rows.pop(key, None)
        self.rows[key] = cells
        if new or replaced or not self.path.exists():
            self.columns += new
            self._rewrite()
            return
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns, lineterminator="\n").writerow(cells)

    def _rewrite(self) -> None:
        """Write every row under the current header, atomically (a temporary file renamed)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, self.columns, lineterminator="\n", restval="")
            w.writeheader()
            w.writerows(self.rows.values())
        os.replace(tmp, self.path)


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Write rows (the union of their columns, in first-seen order) as a CSV file."""
    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(r))
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, list(cols), lineterminator="\n", restval="")
        w.writeheader()
        w.writerows({k: cell(v) for k, v in r.items()} for r in rows)
    os.replace(tmp, path)


def have_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def write_parquet(rows: list[dict[str, Any]], path: str | Path) -> bool:
    """Write rows as Parquet when pyarrow is installed (False when it is not). A column whose
    values have no common type is written as text."""
    if not have_pyarrow():
        return False
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(r))
    arrays = {}
    for c in cols:
        values = [r.get(c) for r in rows]
        try:
            arrays[c] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            arrays[c] = pa.array([None if v is None else str(v) for v in values], pa.string())
    pq.write_table(pa.table(arrays), str(path))
    return True
