"""The image and tools layers: overlay uppers stacked over the root, cached on their inputs.

The build root is never written: the boot packages go into an *image* layer
over the root's whole stack, and the tools deb-mock runs (ostree, mkfs, mtools,
GRUB, qemu-img — the target release's own, whatever the host runs) into a
*tools* layer over the image. Each layer is kept under the root's ``bootc/``
directory, keyed by a digest of its inputs; a layer without its ``done``
record was interrupted and is rebuilt.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deb_mock import apt
from deb_mock.sandbox.spec import OverlayRoot

from .stage_dirs import StageDirs

if TYPE_CHECKING:
    from deb_mock.services import RootServices

#: bump when what goes into a layer changes, so that old layers are rebuilt
LAYER_FORMAT = 1


def digest_of(*parts: object) -> str:
    """A short, stable digest of JSON-serialisable parts (a stage's inputs)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def tree_fingerprint(top: Path) -> str:
    """A digest of a layer directory's names, types, modes, owners, sizes, times and link targets.

    Cheap (one lstat per entry): an upper changes here whenever apt or a
    user changes the root, so the image built over it is rebuilt.
    """
    digest = hashlib.sha256()
    if not top.is_dir():
        return "absent"
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(filenames) + dirnames:
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            target = os.readlink(path) if stat.S_ISLNK(info.st_mode) else ""
            digest.update(f"{os.path.relpath(path, top)}\0{info.st_mode}\0{info.st_uid}\0{info.st_gid}\0"
                          f"{info.st_size}\0{info.st_mtime_ns}\0{info.st_rdev}\0{target}\n".encode())
    return digest.hexdigest()


def root_fingerprint(root: RootServices) -> str:
    """What the root holds now: its base's content id, its snapshot layers and its upper."""
    state = root.store.state()
    parts: list[object] = [root.store.base_content_id(), state.get("base", {}).get("bootstrap_digest")]
    for name in state.get("layers", []):
        parts.append([name, tree_fingerprint(root.paths.layers / name)])
    parts.append(tree_fingerprint(root.paths.upper))
    return digest_of(*parts)


def newest_changelog(layers: Iterable[str]) -> int:
    """The newest Debian changelog's mtime in a stack of layers: a SOURCE_DATE_EPOCH of the image.

    dpkg unpacks files with the mtimes their package was built with, so this
    depends only on which package versions the image holds, and grows when
    they are upgraded: the commit timestamps of a ref never go backwards.
    """
    newest = 0
    for layer in layers:
        for path in glob.glob(os.path.join(layer, "usr/share/doc/*/changelog.Debian.gz")):
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                newest = max(newest, int(info.st_mtime))
    return newest


@dataclasses.dataclass(frozen=True)
class Layer:
    """A cached layer: its directory, its upper and what was recorded when it was finished."""

    top: Path
    lowers: tuple[str, ...]
    info: dict[str, Any]

    @property
    def upper(self) -> Path:
        return self.top / "upper"

    def stack(self) -> tuple[str, ...]:
        """This layer over its lowers, topmost first (lowers for a layer above it)."""
        return (str(self.upper), *self.lowers)


class LayerCache:
    """Layers of one kind (``image`` or ``tools``) under ``<root>/bootc/<kind>/<key>``; only the newest is kept."""

    def __init__(self, root: RootServices, kind: str) -> None:
        self.root = root
        self.stages = StageDirs(root.paths.top / "bootc", kind)

    def lookup(self, key: str, lowers: tuple[str, ...]) -> Layer | None:
        info = self.stages.finished(key)
        return None if info is None else Layer(self.stages.path(key), lowers, info)

    def fresh(self, key: str, lowers: tuple[str, ...]) -> Layer:
        """An empty layer for ``key`` (an unfinished one of the same key is removed)."""
        top = self.stages.fresh(key)
        (top / "upper").mkdir(mode=0o755)
        (top / "work").mkdir(mode=0o700)
        return Layer(top, lowers, {})

    def overlay(self, layer: Layer) -> OverlayRoot:
        """The writable overlay of ``layer`` (used only while the layer is being built)."""
        return OverlayRoot(lowers=layer.lowers, upper=str(layer.upper), work=str(layer.top / "work"),
                           mountpoint=str(self.root.paths.mountpoint))

    def finish(self, layer: Layer, info: dict[str, Any]) -> Layer:
        """Record the layer as complete; until then a crash leaves it to be rebuilt."""
        self.stages.finish(layer.top, info)
        return Layer(layer.top, layer.lowers, info)

    def install(self, layer: Layer, packages: tuple[str, ...], stage: str) -> None:
        """apt-get install ``packages`` into ``layer`` (refreshing the lists first if they are old).

        INITRD=No keeps the kernel's and dracut's maintainer scripts from making
        an initramfs in /boot: the image stage makes the one it boots with.
        """
        root_fs = self.overlay(layer)
        self.root.refresh_lists_if_stale(root_fs)
        self.root.apt_run(apt.install_command(packages), stage, root_fs=root_fs, env={"INITRD": "No"})
