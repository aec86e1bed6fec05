"""Digests: SHA-256 of small data without loading OpenSSL, and of files in blocks, holes not read at all."""

from __future__ import annotations

import errno
import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

BLOCK = 1 << 20
_ZEROS = bytes(BLOCK)


class Hash(Protocol):
    """What hashlib's hash objects and the built-in module's share."""

    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


def _builtin_sha256() -> Callable[..., Hash]:
    """CPython's own SHA-256 (``_sha2`` from 3.12, ``_sha256`` before), or hashlib's where it has none.

    ``import hashlib`` loads OpenSSL's libcrypto, 3-7 ms of every warm start,
    for the few hundred bytes a config's digest or a cache key hashes. The
    built-in module gives the same digests; files, where OpenSSL's speed
    counts, go through :func:`file_digest`.
    """
    for name in ("_sha2", "_sha256"):
        try:
            constructor: Callable[..., Hash] = importlib.import_module(name).sha256
            return constructor
        except (ImportError, AttributeError):
            continue
    import hashlib

    return hashlib.sha256


#: ``sha256(data).hexdigest()``, as hashlib.sha256, for data held in memory
sha256 = _builtin_sha256()


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """The hex digest of ``path`` with hashlib's ``algorithm``.

    A sparse file's holes are hashed as the zeros they read as, without
    reading them: a 4 GiB disk image holding 0.8 GB of data costs the hash
    of 4 GiB but the reads of 0.8 GB (2.6 s instead of 6.7 s here, most of
    it the kernel zero-filling pages for holes).
    """
    import hashlib  # OpenSSL's speed for files; a warm start hashes none

    digest = hashlib.new(algorithm)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        for start, end, is_data in _extents(fd, size):
            if is_data:
                _hash_data(digest, fd, start, end)
            else:
                _hash_zeros(digest, end - start)
    finally:
        os.close(fd)
    return digest.hexdigest()


def _extents(fd: int, size: int) -> list[tuple[int, int, bool]]:
    """(start, end, is_data) spans covering the file; one data span where the file system knows no holes."""
    spans: list[tuple[int, int, bool]] = []
    offset = 0
    while offset < size:
        try:
            data = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # a hole up to the end
                spans.append((offset, size, False))
                break
            return [(0, size, True)]  # SEEK_DATA unsupported: read everything
        if data > offset:
            spans.append((offset, data, False))
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), size)
        spans.append((data, hole, True))
        offset = hole
    return spans


def _hash_data(digest: Any, fd: int, start: int, end: int) -> None:
    position = start
    while position < end:
        block = os.pread(fd, min(BLOCK, end - position), position)
        if not block:  # the file shrank while it was read: what is missing reads as nothing
            return
        digest.update(block)
        position += len(block)


def _hash_zeros(digest: Any, length: int) -> None:
    view = memoryview(_ZEROS)
    while length > 0:
        step = min(BLOCK, length)
        digest.update(view[:step])
        length -= step
