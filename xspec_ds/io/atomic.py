"""Atomic file writes: write to a temporary file beside the target, then rename into place.

A failed write (exception, full disk, interrupted process) never leaves a half-written file
where a good one was: the target is either the old file or the complete new one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_text", "check_overwrite"]


def check_overwrite(path, overwrite: bool) -> Path:
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    return path


@contextlib.contextmanager
def atomic_path(path, overwrite: bool = False, suffix: str | None = None):
    """Context manager yielding a temporary path; on success it replaces ``path``.

    Examples
    --------
    >>> with atomic_path("out.nc", overwrite=True) as tmp:  # doctest: +SKIP
    ...     ds.to_netcdf(tmp)
    """
    path = check_overwrite(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # writers that refuse existing files get a free name
    try:
        yield Path(tmp)
        if not os.path.exists(tmp):
            raise OSError(f"writing {path}: the writer produced no file")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path, text: str, overwrite: bool = False) -> None:
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text)
