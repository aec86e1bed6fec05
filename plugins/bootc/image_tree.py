"""The image tree every later stage starts from, and what makes one: a root's image layer or a container image.

Its own module so that the pipeline (which makes trees from roots) and
from_image (which makes them from container images) share the form and
the versions without importing each other.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Protocol

#: the version of how a tree is made (the transforms): a new one redoes every cached tree
TREE_FORMAT = 7  # 6: the ESP is an automount (its boot-time mount timed out under TCG); 7: serial getty at once
#: the initramfs: for any machine (no host-only), reproducible, without udev's hardware database (13.5 of its
#: 73 MB: keyboard maps and device names, which the root file system needs no one of; the booted system has it)
DRACUT_OPTIONS = ("--force", "--no-hostonly", "--reproducible", "--omit", "hwdb")
#: the initramfs of an image deb-mock assembles (zstd is among its packages): zstd at its default level instead
#: of dracut's gzip -9. The initramfs is mostly xz-compressed modules, so gzip -9 saves 0.5 MB of 37 for 6 of
#: dracut's 15 s here, and the kernel unpacks zstd faster at boot. One thread: the same bytes on any machine.
ZSTD_INITRAMFS = ("--compress=zstd -q -3",)
INITRAMFS_PACKAGES = ("zstd",)


@dataclasses.dataclass(frozen=True)
class Tree:
    """A materialised, transformed image tree in the commit's form."""

    path: Path
    key: str
    kver: str
    epoch: int
    #: what the lint found in it (lint.Finding as dicts)
    lint: tuple[dict[str, str], ...] = ()


class TreeSource(Protocol):
    """Where a pipeline's tree comes from when it is not the root (--bootc-from)."""

    def tree(self) -> Tree: ...

    @property
    def report(self) -> dict[str, object]:
        """What result.json's ``bootc`` says about the source (after tree())."""
        ...
