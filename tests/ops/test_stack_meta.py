"""Stacked ``meta_table``: rows of ECSV tables with one header joined as text, loss-free
(issue 14, mutation testing)."""

from __future__ import annotations

from astropy.table import Table

from xspec_ds.containers import table_from_text
from xspec_ds.ops.stack import concat_meta_tables

HEADER = (
    "# %ECSV 1.0\n# ---\n# datatype:\n# - {name: OBS_ID, datatype: int64}\n"
    "# - {name: X, datatype: float64}\n# schema: astropy-2.0\nOBS_ID X\n"
)


def test_same_header_rows_are_joined_as_written():
    """The rows are kept character for character ("1.50" is not rewritten as "1.5"), and a
    table whose last row has no newline still gets one before the next table's rows."""
    a = HEADER + "1 1.50"  # no trailing newline
    b = HEADER + "2 2.50\n3 -0.0\n"
    out = concat_meta_tables([a, None, b])
    assert out == HEADER + "1 1.50\n2 2.50\n3 -0.0\n"
    t = table_from_text(out)
    assert list(t["OBS_ID"]) == [1, 2, 3] and list(t["X"]) == [1.5, 2.5, 0.0]


def test_different_headers_are_stacked_as_tables():
    other = "# %ECSV 1.0\n# ---\n# datatype:\n# - {name: OBS_ID, datatype: int64}\n# schema: astropy-2.0\nOBS_ID\n7\n"
    out = table_from_text(concat_meta_tables([HEADER + "1 1.50\n", other]))
    assert isinstance(out, Table)
    assert list(out["OBS_ID"]) == [1, 7]
    assert out["X"][0] == 1.5 and bool(out["X"].mask[1])
