"""tar of a tree deb-mock owns (a prepared base, a build-dependency layer): the commands, by compression.

Both the root cache and the remote cache write and read such tarballs with
the host's tar: numeric owners, xattrs (overlayfs' marks and file
capabilities among them), sorted names, one file system.
"""

from __future__ import annotations

from pathlib import Path

SUFFIX = {"zstd": ".tar.zst", "gzip": ".tar.gz", "none": ".tar"}
#: zstd's fast levels: the tarball is written on the critical path of every cold --init, so speed
#: counts more than size (--fast=4 is faster than -1 for a third more bytes; see the README's benchmarks)
COMPRESSOR = {"zstd": ["-I", "zstd --fast=4 -T0"], "gzip": ["-I", "gzip -1"], "none": []}
DECOMPRESSOR = {"zstd": ["-I", "zstd -d -T0"], "gzip": ["-I", "gzip -d"], "none": []}


def create_command(tree: Path, tarball: Path, compression: str) -> list[str]:
    """tar of a tree: numeric owners, xattrs, sorted names, one file system."""
    return ["tar", "--create", "--file", str(tarball), "--directory", str(tree), "--numeric-owner",
            "--xattrs", "--xattrs-include=*", "--sort=name", "--one-file-system", *COMPRESSOR[compression], "."]


def extract_command(tarball: Path, target: Path, compression: str) -> list[str]:
    """The matching extraction (as root: owners, modes, device nodes, xattrs)."""
    return ["tar", "--extract", "--file", str(tarball), "--directory", str(target), "--numeric-owner",
            "--preserve-permissions", "--xattrs", "--xattrs-include=*", *DECOMPRESSOR[compression]]
