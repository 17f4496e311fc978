"""Excel workbooks that hold what the tables say: a text that starts with `=` stays text, never a formula
that the spreadsheet would run (`=HYPERLINK(...)` in an article), and the control characters a worksheet
cannot hold (a NUL from a damaged file) are written as U+FFFD instead of ending the command.

>>> excel_text("a\\x00b")
'a\\ufffdb'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def excel_text(value: Any) -> Any:
    """`value` with the characters a worksheet cannot hold replaced by U+FFFD (anything but text as it is)."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value) if isinstance(value, str) else value


def write_workbook(path: Path, sheets: dict[str, Any]) -> None:
    """Write each data frame of `sheets` as a sheet of one workbook at `path`, every text cell as text."""
    import io

    buffer = io.BytesIO()  # built in memory, then written in one go
    failure = None
    try:
        _fill(buffer, sheets)
    except OSError as exc:  # openpyxl's own temporary files, refused by a full /tmp or `ulimit -f`
        failure = (exc.errno, exc.strerror, exc.filename)
    if failure is not None:
        _collect_quietly()
        raise OSError(*failure)
    path.write_bytes(buffer.getvalue())


def _fill(buffer: Any, sheets: dict[str, Any]) -> None:
    import pandas as pd

    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            text = frame.select_dtypes(include="object").columns
            frame = frame.assign(**{column: frame[column].map(excel_text) for column in text})
            frame.to_excel(writer, sheet_name=name, index=False)
            if any(frame[c].map(lambda v: isinstance(v, str) and v.startswith("=")).any() for c in text):
                _no_formulas(writer.sheets[name])


def _collect_quietly() -> None:
    """Finish the writers a failed write left open: their cleanup hits the same refusal, which the error
    raised after this reports once (Python would print each as "Exception ignored", a traceback at exit)."""
    import gc
    import sys

    hook, sys.unraisablehook = sys.unraisablehook, lambda unraisable: None
    try:
        gc.collect()
    finally:
        sys.unraisablehook = hook


def _no_formulas(sheet: Any) -> None:
    for row in sheet.iter_rows():
        for cell in row:
            if cell.data_type == "f":  # openpyxl takes a string that starts with "=" for a formula
                cell.data_type = "s"
