"""Writing a table into README.md between its ``<!-- bench:... -->`` markers."""

from __future__ import annotations

import difflib
from pathlib import Path

START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"
BUDGET_START, BUDGET_END = "<!-- bench:budget:start -->", "<!-- bench:budget:end -->"


def update_readme(readme_path: str | Path, table: str, start: str = START, end: str = END) -> list[str]:
    """Put ``table`` between the ``start`` and ``end`` markers of ``readme_path`` (by default
    ``<!-- bench:results:start -->`` and ``<!-- bench:results:end -->``); the rest of the file is
    left as it is.

    Returns:
        The unified diff of the change (empty when the table was already there).

    Raises:
        ValueError: the markers are missing, repeated or out of order.
    """
    readme_path = Path(readme_path)
    text = readme_path.read_text(encoding="utf-8")
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"{readme_path}: expected one {start} line followed by one {end} line around the table")
    head, rest = text.split(start, 1)
    old, tail = rest.split(end, 1)
    new = "\n" + table.rstrip("\n") + "\n"
    if old == new:
        return []
    readme_path.write_text(head + start + new + end + tail, encoding="utf-8")
    name = str(readme_path)
    return list(difflib.unified_diff(old.splitlines(), new.splitlines(), name, name, lineterm=""))
