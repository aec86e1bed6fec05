"""--bootc-from: a bootc container image, not the root, as the image tree (bootc-image-builder's input).

The image is read by skopeo (``oci:DIR[:TAG]``, ``oci-archive:FILE[:TAG]``,
``docker-archive:FILE``, ``containers-storage:REF``) into a local OCI layout,
its layers are unpacked in order with OCI whiteouts honoured, and the tree
goes through the same transforms, lint, commit, disk and OCI stages as a
root's own. Nothing of the root goes into the image: the root's base only
lends the tools (skopeo, tar, ostree, ...), which run in deb-mock's sandbox
with the image bound in, so a hostile layer (``../``, links out of the tree,
device nodes) can touch at most a throw-away scratch. Trees are cached by the
image's manifest digest.

bootc's convention is checked before anything is committed: one kernel in
/usr/lib/modules with its vmlinuz; an image without initramfs.img gets one
from its own dracut. An image that breaks it is exit 3, with what is missing.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deb_mock.errors import ConfigError, RootError, UsageError
from deb_mock.layerstore import remove_tree
from deb_mock.sandbox.spec import Bind, DirectoryRoot, Mount

from . import lint, oci, transforms
from .image_layers import digest_of, newest_changelog
from .image_tree import DRACUT_OPTIONS, TREE_FORMAT, Tree
from .intree import InTree
from .stage_dirs import StageDirs

if TYPE_CHECKING:
    from .pipeline import Pipeline

TRANSPORTS = ("oci", "oci-archive", "docker-archive", "containers-storage")
#: the format of a tree made from an image (with pipeline.TREE_FORMAT, which covers the transforms)
FROM_FORMAT = 1
IN_SOURCE = "/deb-mock/source"
#: where the tree being unpacked appears in the sandbox
IN_TREE = "/deb-mock/tree"
#: where the pull's work directory (the layout, the layer lists) appears in the sandbox
IN_PULL = "/deb-mock/pull"
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
#: unpack every layer in order: its whiteouts remove what the layers below hold, then its files go in
UNPACK_SCRIPT = r"""
set -eu
tree=$1; shift
while [ $# -ge 3 ]; do
    blob=$1 removed=$2 opaque=$3; shift 3
    cd "$tree"
    xargs -0 -r rm -rf -- < "$removed"
    xargs -0 -r -n 1 sh -c '[ ! -d "$1" ] || [ -L "$1" ] || find "$1" -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +' sh \
        < "$opaque"
    tar --extract --file "$blob" --directory "$tree" --numeric-owner --same-owner --preserve-permissions \
        --xattrs --xattrs-include='*' --acls --exclude='.wh.*'
done
"""
LIST_SCRIPT = r"""
set -eu
out=$1; shift
i=0
for blob in "$@"; do
    tar --list --quoting-style=escape --file "$blob" > "$out/list-$i"
    i=$((i + 1))
done
"""


class NotBootable(ConfigError):
    """The image breaks bootc's convention (exit 3): the message names what is missing."""


@dataclasses.dataclass(frozen=True)
class ImageSource:
    """Where the image comes from, as skopeo names it."""

    transport: str
    #: the file or directory (None for containers-storage)
    path: Path | None
    #: the tag in a layout or archive, or the containers-storage reference
    reference: str

    @classmethod
    def parse(cls, text: str) -> ImageSource:
        transport, sep, rest = text.partition(":")
        if not sep or transport not in TRANSPORTS or not rest:
            raise UsageError(f"--bootc-from '{text}': expected one of "
                             "oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE, containers-storage:REF")
        if transport == "containers-storage":
            return cls(transport, None, rest)
        path, reference = rest, ""
        if transport != "docker-archive":
            head, sep, tag = rest.rpartition(":")
            if sep and tag and "/" not in tag:
                path, reference = head, tag
        where = Path(path).absolute()
        wanted_dir = transport == "oci"
        if not (where.is_dir() if wanted_dir else where.is_file()):
            raise UsageError(f"--bootc-from '{text}': {where} is not "
                             + ("a directory" if wanted_dir else "a file"))
        return cls(transport, where, reference)

    def inside(self) -> str:
        """skopeo's name for the image as the sandbox sees it (the file or directory bound at IN_SOURCE)."""
        if self.transport == "containers-storage":
            return f"containers-storage:{self.reference}"
        return f"{self.transport}:{IN_SOURCE}" + (f":{self.reference}" if self.reference else "")

    def mounts(self) -> list[Mount]:
        return [] if self.path is None else [Bind(str(self.path), IN_SOURCE)]

    def __str__(self) -> str:
        if self.path is None:
            return f"{self.transport}:{self.reference}"
        return f"{self.transport}:{self.path}" + (f":{self.reference}" if self.reference else "")


class FromImage:
    """The image tree of a container image, for a pipeline whose tree() it replaces."""

    def __init__(self, pipeline: Pipeline, source: ImageSource) -> None:
        self.pipeline = pipeline
        self.root = pipeline.root
        self.source = source
        self.top = pipeline.top
        self.manifest_digest = ""
        self._tree: Tree | None = None

    @property
    def report(self) -> dict[str, object]:
        return {"from": {"image": str(self.source), "manifest_digest": self.manifest_digest}}

    def _copy(self, work: Path) -> None:
        """skopeo copy of the image into ``work/layout`` (an OCI layout; skopeo checks every blob's digest).

        In the sandbox, with the image bound in; containers-storage is the
        host's own store (podman's), read by the host's skopeo.
        """
        goarch = oci.GOARCH.get(self.pipeline.arch, self.pipeline.arch)
        options = ["skopeo", "--insecure-policy", "--override-os", "linux", "--override-arch", goarch,
                   "copy", "--quiet"]
        if self.source.transport != "containers-storage":
            root_fs = self.root.new_scratch("bootc-pull", self.pipeline.skopeo_tools().stack())
            try:
                self.root.checked_run([*options, self.source.inside(), f"oci:{IN_PULL}/layout:image"], "bootc-pull",
                                      root_fs=root_fs, network=False, keep=2000,
                                      mounts=[*self.source.mounts(), Bind(str(work), IN_PULL, readonly=False)])
            except RootError as exc:
                raise NotBootable(f"--bootc-from {self.source}: skopeo could not read the image:\n"
                                  f"{exc.message}") from None
            finally:
                self.root.discard_scratch("bootc-pull")
            return
        with self.root.logs.sink("bootc-pull", keep=2000) as sink:
            returncode = self.root.run_on_host([*options, self.source.inside(), f"oci:{work}/layout:image"], sink)
        if returncode != 0:
            raise NotBootable(f"--bootc-from {self.source}: skopeo could not read the image:\n"
                              + "\n".join(sink.tail[-10:]))

    def tree(self) -> Tree:
        if self._tree is not None:
            return self._tree
        settings = self.pipeline.settings
        self.root.require_initialized()
        layout = self._pull()
        manifest, config = _read_image(layout, self.manifest_digest)
        key = digest_of(FROM_FORMAT, TREE_FORMAT, self.manifest_digest, settings.cloud_init,
                        settings.source_date_epoch, DRACUT_OPTIONS)
        stages = StageDirs(self.top, "from-tree")
        done = stages.finished(key) if settings.cache else None
        if done is not None:
            remove_tree(layout.parent)
            self._tree = Tree(stages.path(key) / "root", key, str(done["kver"]), int(done["epoch"]),
                              tuple(done.get("lint", ())))
            return self._tree
        with self.root.logs.stage("bootc-tree"):
            self.root.console.info(f"bootc: unpacking {self.source} ({len(manifest['layers'])} layer(s))")
            top = stages.fresh(key)
            tree = top / "root"
            tree.mkdir()
            tree.chmod(0o755)
            self._unpack(layout, [layer["digest"] for layer in manifest["layers"]], tree)
            remove_tree(layout.parent)
            kver = self._bootable(tree)
            epoch = settings.source_date_epoch or _created(config) or newest_changelog((str(tree),))
            self._initramfs(tree, kver, epoch, DRACUT_OPTIONS)
            try:
                transforms.apply_all(tree, kver, epoch, cloud_init=settings.cloud_init)
            except FileNotFoundError as exc:
                raise NotBootable(f"--bootc-from {self.source}: {exc}") from None
            except OSError as exc:
                raise RootError(f"bootc: transforming the image tree failed: {exc}") from None
            findings = tuple(dataclasses.asdict(f) for f in lint.lint_tree(tree, self.pipeline.arch))
            stages.finish(top, {"key": key, "kver": kver, "epoch": epoch, "lint": findings,
                                "manifest_digest": self.manifest_digest, "source": str(self.source)})
        self._tree = Tree(tree, key, kver, epoch, findings)
        return self._tree

    def _pull(self) -> Path:
        """The image as an OCI layout in ``<bootc>/pull/layout`` (skopeo verifies every blob's digest)."""
        work = self.top / "pull"
        if work.exists():
            remove_tree(work)
        work.mkdir(parents=True)
        with self.root.logs.stage("bootc-pull"):
            self.root.console.info(f"bootc: reading {self.source}")
            self._copy(work)
        index = json.loads(_read_own(work / "layout" / "index.json"))
        manifests = index.get("manifests") or []
        if len(manifests) != 1:
            raise NotBootable(f"--bootc-from {self.source}: expected one image, skopeo wrote {len(manifests)}")
        self.manifest_digest = str(manifests[0]["digest"])
        return work / "layout"

    def _unpack(self, layout: Path, digests: list[str], tree: Path) -> None:
        """Every layer in order, in the tools sandbox (tar there): the blobs read-only, the listing's directory
        writable while tar lists the layers, and then only the tree, so that a link a layer plants cannot
        reach the whiteout lists or the later layers."""
        lists = layout.parent / "lists"
        lists.mkdir()
        blobs = [f"{IN_PULL}/layout/blobs/sha256/{_hex(d)}" for d in digests]
        layout_mount = Bind(str(layout), f"{IN_PULL}/layout")
        tools = self.root.new_scratch("bootc-tools", self.pipeline.tools().stack())
        try:
            self.pipeline.run_tool(["/bin/sh", "-c", LIST_SCRIPT, "sh", f"{IN_PULL}/lists", *blobs], "bootc-unpack",
                                   [layout_mount, Bind(str(lists), f"{IN_PULL}/lists", readonly=False)],
                                   root_fs=tools)
            args: list[str] = []
            for i, blob in enumerate(blobs):
                removed, opaque = whiteouts(_read_own(lists / f"list-{i}").decode("ascii", "replace"))
                (lists / f"removed-{i}").write_bytes(b"".join(os.fsencode(p) + b"\0" for p in removed))
                (lists / f"opaque-{i}").write_bytes(b"".join(os.fsencode(p) + b"\0" for p in opaque))
                args += [blob, f"{IN_PULL}/lists/removed-{i}", f"{IN_PULL}/lists/opaque-{i}"]
            self.pipeline.run_tool(["/bin/sh", "-c", UNPACK_SCRIPT, "sh", IN_TREE, *args], "bootc-unpack",
                                   [layout_mount, Bind(str(lists), f"{IN_PULL}/lists"),
                                    Bind(str(tree), IN_TREE, readonly=False)], root_fs=tools)
        finally:
            self.root.discard_scratch("bootc-tools")

    def _bootable(self, tree: Path) -> str:
        """The image's one kernel version, with its vmlinuz where bootc puts it (exit 3 naming what is missing)."""
        kvers = transforms.kernel_versions(tree)
        if len(kvers) != 1:
            what = "no kernel (no /usr/lib/modules/KVER/modules.dep)" if not kvers else f"{len(kvers)} kernels {kvers}"
            raise NotBootable(f"--bootc-from {self.source}: not a bootc image: it holds {what}; bootc needs one")
        kver = kvers[0]
        with InTree(tree) as image:
            if not (image.is_file(f"usr/lib/modules/{kver}/vmlinuz") or image.is_file(f"boot/vmlinuz-{kver}")):
                raise NotBootable(f"--bootc-from {self.source}: not a bootc image: /usr/lib/modules/{kver}/vmlinuz "
                                  "is missing")
        return kver

    def _initramfs(self, tree: Path, kver: str, epoch: int, options: tuple[str, ...]) -> None:
        """bootc's convention puts initramfs.img beside the modules; one is made with the image's dracut if not."""
        target = f"usr/lib/modules/{kver}/initramfs.img"
        with InTree(tree) as image:
            if image.is_file(target):
                return
            if not (image.exists("usr/bin/dracut") or image.exists("bin/dracut")):
                raise NotBootable(f"--bootc-from {self.source}: not a bootc image: /{target} is missing and the "
                                  "image has no dracut to make it")
        self.root.console.info(f"bootc: the image has no initramfs: dracut for {kver} from the image's own tools")
        chroot = DirectoryRoot(str(tree), str(self.root.paths.mountpoint))
        with self.root.logs.stage("bootc-dracut"):
            self.root.checked_run(["dracut", *options, "--kver", kver, f"/{target}"], "bootc-dracut", root_fs=chroot,
                                  network=False, env=self.pipeline.env(epoch))




def whiteouts(listing: str) -> tuple[list[str], list[str]]:
    """What a layer's whiteouts remove from the layers below: (paths, directories emptied), relative to the tree.

    ``listing`` is ``tar --list --quoting-style=escape``; names with ``..`` are
    refused (tar itself skips them when extracting).
    """
    removed: list[str] = []
    opaque: list[str] = []
    for line in listing.splitlines():
        name = _unescape(line).lstrip("/")
        while name.startswith("./"):
            name = name[2:]
        directory, _, base = name.rstrip("/").rpartition("/")
        if not base.startswith(WHITEOUT):
            continue
        if ".." in name.split("/"):
            raise NotBootable(f"a layer's whiteout leaves the tree: {name}")
        if base == OPAQUE:
            opaque.append(directory or ".")
        elif base[len(WHITEOUT):] not in ("", ".", ".."):
            removed.append(f"{directory}/{base[len(WHITEOUT):]}" if directory else base[len(WHITEOUT):])
    return removed, opaque


_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "r": "\r", "v": "\v", "?": "?",
            " ": " "}


def _unescape(text: str) -> str:
    """GNU tar's ``escape`` quoting undone (``\\n``, ``\\\\``, octal ``\\ooo`` bytes)."""
    out = bytearray()
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            following = text[i + 1]
            if re.fullmatch(r"[0-7]{3}", text[i + 1:i + 4]):
                out.append(int(text[i + 1:i + 4], 8))
                i += 4
                continue
            out += _ESCAPES.get(following, following).encode()
            i += 2
            continue
        out += char.encode()
        i += 1
    return os.fsdecode(bytes(out))


def _hex(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    if algorithm != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", value):
        raise NotBootable(f"--bootc-from: an unexpected blob digest '{digest}'")
    return value


def _read_own(path: Path) -> bytes:
    """A file skopeo or tar wrote into deb-mock's own directory, never through a link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _read_image(layout: Path, manifest_digest: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The manifest and the config of the layout's image (each checked against its digest)."""
    def blob(digest: str) -> dict[str, Any]:
        data = _read_own(layout / "blobs/sha256" / _hex(digest))
        if hashlib.sha256(data).hexdigest() != _hex(digest):
            raise NotBootable(f"--bootc-from: blob {digest} does not match its digest")
        value = json.loads(data)
        if not isinstance(value, dict):
            raise NotBootable(f"--bootc-from: blob {digest} is not a JSON object")
        return value

    manifest = blob(manifest_digest)
    if not isinstance(manifest.get("layers"), list) or not isinstance(manifest.get("config"), dict):
        raise NotBootable(f"--bootc-from: manifest {manifest_digest} is not an image manifest")
    config = blob(str(manifest["config"]["digest"]))
    return manifest, config


def _created(config: dict[str, Any]) -> int:
    """The image's creation time (RFC 3339) as seconds, 0 if it has none."""
    text = str(config.get("created") or "")
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)", text)
    if not match:
        return 0
    moment = datetime.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.UTC)
    return int(moment.timestamp())
