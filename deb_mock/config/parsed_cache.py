"""Parsed configuration files, kept as JSON: a warm run neither imports nor runs the YAML parser.

Importing PyYAML and composing the bundled files with their line numbers
is a tenth of a warm ``--chroot``. A file's parse (its values and the
``file:line`` of each) is kept under a key made of its path, device, inode,
size, mtime and ctime, so any change to the file, even within the same second,
misses. The cache belongs to the user who runs deb-mock
(``$XDG_CACHE_HOME/deb-mock/config``, 0700): an entry is used only when the
directory and the file are that user's and nobody else can write them, so
nobody else can put configuration (bind mounts, say) into their runs. Values
JSON cannot hold (YAML dates) are never cached.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

from deb_mock.digests import sha256
from deb_mock.fileio import write_atomic

#: bump when what a parse yields changes
CACHE_VERSION = 1
#: entries of files that changed are never read again: a miss prunes those older than this, and all but the
#: newest MAX_ENTRIES (a user with many configs re-parses a few; nobody's cache grows without end)
MAX_AGE_SECONDS = 30 * 86400
MAX_ENTRIES = 200
Parsed = tuple[dict[str, Any], dict[tuple[str, ...], str]]


def cache_dir() -> Path | None:
    """The user's cache directory for parses, or None when there is no home to put it in."""
    base = os.environ.get("XDG_CACHE_HOME") or (os.path.join(os.environ["HOME"], ".cache")
                                                if os.environ.get("HOME") else "")
    return Path(base) / "deb-mock" / "config" if base else None


def _key(label: str, info: os.stat_result) -> str:
    identity = f"{CACHE_VERSION}\0{label}\0{info.st_dev}\0{info.st_ino}\0{info.st_size}\0{info.st_mtime_ns}\0" \
               f"{info.st_ctime_ns}"
    return sha256(identity.encode()).hexdigest()


def _trusted(path: Path, directory: bool) -> bool:
    """Ours, of the right kind, and writable by nobody else (never followed if a link)."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    kind = stat.S_ISDIR(info.st_mode) if directory else stat.S_ISREG(info.st_mode)
    return kind and info.st_uid == os.geteuid() and not info.st_mode & 0o022


def load(label: str, info: os.stat_result) -> Parsed | None:
    """The cached parse of the file ``label`` as it is now (``info``), if there is a trusted one."""
    directory = cache_dir()
    if directory is None or not _trusted(directory, True):
        return None
    entry = directory / f"{_key(label, info)}.json"
    if not _trusted(entry, False):
        return None
    try:
        stored = json.loads(entry.read_text(encoding="utf-8"))
        origins = {tuple(path): str(origin) for path, origin in stored["origins"]}
        data = stored["data"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (data, origins) if isinstance(data, dict) else None


def store(label: str, info: os.stat_result, data: dict[str, Any], origins: dict[tuple[str, ...], str]) -> None:
    """Keep a parse for the next run (best effort: a cache that cannot be written is no error)."""
    directory = cache_dir()
    if directory is None:
        return
    try:
        text = json.dumps({"data": data, "origins": [[list(p), o] for p, o in origins.items()]})
    except (TypeError, ValueError):
        return  # a YAML date or another value JSON cannot hold
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if _trusted(directory, True):
            write_atomic(directory / f"{_key(label, info)}.json", text)
            prune(directory)
    except OSError:
        pass


def prune(directory: Path, now: float | None = None) -> None:
    """Drop entries older than MAX_AGE_SECONDS and all but the newest MAX_ENTRIES (run on a miss only)."""
    now = time.time() if now is None else now
    entries: list[tuple[float, Path]] = []
    for entry in directory.glob("*.json"):
        try:
            entries.append((os.lstat(entry).st_mtime, entry))
        except OSError:
            continue
    entries.sort(reverse=True)
    for position, (mtime, entry) in enumerate(entries):
        if position >= MAX_ENTRIES or now - mtime > MAX_AGE_SECONDS:
            entry.unlink(missing_ok=True)
