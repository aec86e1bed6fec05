"""Writing files so that a reader sees the old content or the new one, never half of either.

A killed run must not leave a half-written state.json, result.json or cache
record behind: every such file is written to a temporary name beside it and
renamed over the old one (rename is atomic within a file system).
"""

from __future__ import annotations

import os
from pathlib import Path

#: the infix of temporary files written by :func:`write_atomic` (cleaners look for it)
TEMP_INFIX = ".tmp-"


def temp_name(path: Path) -> Path:
    """The temporary file :func:`write_atomic` uses for ``path`` in this process."""
    return path.with_name(f"{path.name}{TEMP_INFIX}{os.getpid()}")


def write_atomic(path: Path, data: str | bytes, *, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` atomically; ``durable`` also fsyncs before the rename.

    The temporary file is removed again if writing fails.
    """
    tmp = temp_name(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        with tmp.open("wb") as handle:
            handle.write(payload)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
