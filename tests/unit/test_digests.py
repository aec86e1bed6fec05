"""Digests: file_digest skips reading holes but hashes what a plain read gives; sha256 is hashlib's."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from deb_mock import digests
from deb_mock.digests import BLOCK, file_digest


def _plain(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("layout", [
    [],                                            # empty
    [(0, b"abc")],                                 # data only
    [(5 * BLOCK, b"tail")],                        # a hole, then data at the end
    [(0, b"head"), (3 * BLOCK + 17, b"middle")],   # data, hole, data
    [(0, os.urandom(2 * BLOCK + 5))],              # data longer than a block
])
@pytest.mark.parametrize("trailing_hole", [0, 4 * BLOCK + 3])
def test_sparse_files_hash_as_read(tmp_path: Path, layout: list[tuple[int, bytes]], trailing_hole: int) -> None:
    path = tmp_path / "sparse.img"
    with path.open("wb") as handle:
        end = 0
        for offset, data in layout:
            handle.seek(offset)
            handle.write(data)
            end = max(end, offset + len(data))
        handle.truncate(end + trailing_hole)
    assert file_digest(path) == _plain(path)
    assert file_digest(path, "sha512") == hashlib.sha512(path.read_bytes()).hexdigest()


def test_holes_are_not_read(tmp_path: Path) -> None:
    """A 256 MiB file that is one hole hashes without a read: the span list says so."""
    from deb_mock.digests import _extents

    path = tmp_path / "hole.img"
    with path.open("wb") as handle:
        handle.truncate(1 << 28)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert _extents(fd, 1 << 28) == [(0, 1 << 28, False)]
    finally:
        os.close(fd)
    assert file_digest(path) == hashlib.sha256(bytes(1 << 28)).hexdigest()


@pytest.mark.parametrize("data", [b"", b"deb-mock", bytes(range(256)) * 300])
def test_the_builtin_sha256_gives_hashlibs_digests(data: bytes) -> None:
    """Cache keys and config digests made before the switch to the built-in module stay valid."""
    hasher = digests.sha256()
    hasher.update(data[:100])
    hasher.update(data[100:])
    assert digests.sha256(data).hexdigest() == hasher.hexdigest() == hashlib.sha256(data).hexdigest()
    assert digests.sha256 is not hashlib.sha256  # the built-in module was found: no OpenSSL at start-up
