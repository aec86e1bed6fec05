"""The boot machine from the run's own release: qemu and its UEFI firmware in a tree of their own, run contained.

Why not the host's qemu: it may be far older than the images it boots. On
this Debian 12 host (qemu 7.2), alternating boots of one trixie image to the
login prompt under TCG took 52-64 s; with trixie's qemu 10.0 on one vCPU
40-49 s, and with its thread per vCPU on both host cores 30 s (qemu 7.2 was
seen to panic guests so: Machine.tcg_threads). And qemu reads a disk image
made from a root's packages: like every other tool deb-mock runs over a
root's output, it runs contained: uid 0 inside is an unprivileged host id
with no capabilities, no network, and only the image (read-only), its
drives (read-only) and the boot directory bound in.

The tree is bootstrapped once by mmdebstrap (variant essential plus the
emulator's and the firmware's packages) from the config's suite, mirror,
components and keyrings, for the host's architecture, into
``<cache_topdir>/bootc-tools/<key>``: written under a temporary name and
renamed when complete, so an interrupted bootstrap leaves nothing that a
later run would use (its leftovers are deleted by the next bootstrap).
Each boot mounts the tree as the lower layer of an overlay whose upper is in
the boot directory: the tree stays as it was made. ``--scrub=bootc`` deletes
the trees; they are made again on the next boot.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from deb_mock import bootstrap, dpkg_status
from deb_mock.errors import BootstrapError
from deb_mock.foreign_arch import host_architecture
from deb_mock.layerstore import remove_tree
from deb_mock.sandbox import runner
from deb_mock.sandbox.spec import DEFAULT_PATH, Bind, OverlayRoot, SandboxSpec

from .formats import BOOTABLE
from .image_layers import digest_of
from .qemu import BootFiles, Machine, MissingTool

if TYPE_CHECKING:
    from deb_mock.config.schema import Config
    from deb_mock.services import RootServices

#: bump when what a tree holds or how it is made changes
TOOLS_FORMAT = 1
#: where the boot directory (overlay disk, firmware variables) appears in the sandbox
BOOT_DIR = "/deb-mock/boot"
#: where the image appears in the sandbox: the overlay's backing file
IMAGE = "/deb-mock/image"
#: copy the firmware's variables into the boot directory, then become qemu ($1 source, $2 copy, then argv)
START = 'cp -- "$1" "$2" && shift 2 && exec "$@"'
#: temporary trees are named .<key>.<pid>.tmp while mmdebstrap writes them
_TMP_SUFFIX = ".tmp"


def tools_dir(config: Config) -> Path:
    """Where the boot tools' trees live: shared by every root of this cache directory."""
    return Path(config.cache_topdir) / "bootc-tools"


@dataclasses.dataclass(frozen=True)
class ToolsTree:
    """A finished tree: its path and the emulator's major version (which picks TCG's threads)."""

    path: Path
    qemu_version: int


class ToolsQemu:
    """qemu.Launcher for qemu from the run's release, in a sandbox over the tools tree."""

    def __init__(self, root: RootServices) -> None:
        self.root = root
        self._tree: ToolsTree | None = None
        self._machine: Machine | None = None
        self._boot_dir: Path | None = None
        self._binds: tuple[Bind, ...] = ()

    def prepare(self, machine: Machine, boot_dir: Path, image: Path, drives: Sequence[Path]) -> BootFiles:
        self._tree = ensure_tree(self.root, machine)
        self._machine, self._boot_dir = machine, boot_dir
        # the overlay was made on the host, naming the image's host path; in the sandbox the image is at IMAGE
        subprocess.run(["qemu-img", "rebase", "-u", "-F", BOOTABLE.get(image.suffix.lower(), "raw"), "-b", IMAGE,
                        str(boot_dir / "disk.qcow2")], check=True, capture_output=True)
        drive_paths = tuple(f"/deb-mock/drive{index}" for index in range(len(drives)))
        self._binds = (Bind(str(image.absolute()), IMAGE),
                       *(Bind(str(d.absolute()), p) for d, p in zip(drives, drive_paths, strict=True)))
        return BootFiles(machine.code[0], f"{BOOT_DIR}/vars.fd", f"{BOOT_DIR}/disk.qcow2", drive_paths)

    def qemu_version(self, machine: Machine) -> int:
        return self._tree.qemu_version if self._tree else 0

    def interactive(self, argv: list[str]) -> int:
        return runner.run_interactive(self._spec(argv))

    def piped(self, argv: list[str]) -> AbstractContextManager[subprocess.Popen[bytes]]:
        return runner.piped(self._spec(argv))

    def _spec(self, argv: list[str]) -> SandboxSpec:
        assert self._tree and self._machine and self._boot_dir, "prepare() first"
        layer = self._boot_dir / "layer"
        return SandboxSpec(
            argv=("/bin/sh", "-c", START, "sh", self._machine.variables[0], f"{BOOT_DIR}/vars.fd", *argv),
            root=OverlayRoot(lowers=(str(self._tree.path),), upper=str(layer / "upper"), work=str(layer / "work"),
                             mountpoint=str(layer / "merged")),
            env={"PATH": DEFAULT_PATH, "HOME": "/root", "LANG": "C.UTF-8", "TERM": os.environ.get("TERM", "dumb")},
            network=False,
            hostname=self.root.config.sandbox.hostname,
            mounts=(Bind(str(self._boot_dir), BOOT_DIR, readonly=False), *self._binds),
            marker=self.root.process_tag,
            id_map=self.root.id_map(),
            capabilities=(),
        )


def tree_key(config: Config, machine: Machine) -> str:
    """What makes a tree: the release and its archive, the host's architecture, the packages."""
    return digest_of(TOOLS_FORMAT, config.suite, config.mirror, config.components, config.keyrings,
                     config.apt_options, host_architecture(), machine.emulator_package, machine.firmware_package)


def ensure_tree(root: RootServices, machine: Machine) -> ToolsTree:
    """The finished tools tree for ``machine``, bootstrapped first if there is none."""
    config = root.config
    directory = tools_dir(config)
    key = tree_key(config, machine)
    tree = directory / key
    if not (tree / INFO).is_file():
        _bootstrap(root, machine, directory, key)
    return ToolsTree(tree, major_version((tree / INFO).read_text().strip()))


#: the finished tree's mark, which holds the emulator's major version
INFO = "deb-mock-qemu-version"


def _bootstrap(root: RootServices, machine: Machine, directory: Path, key: str) -> None:
    """mmdebstrap the tree under a temporary name, record qemu's version, rename it into place."""
    config = root.config
    if config.offline:
        raise BootstrapError(f"the boot tools ({machine.emulator_package}, {machine.firmware_package} from "
                             f"{config.suite}) are not made yet, and the config is offline",
                             hint="boot once with the network, or set plugins.bootc.qemu_from: host")
    if shutil.which("mmdebstrap") is None:
        raise MissingTool("mmdebstrap is not installed (it makes the boot tools)", hint="apt-get install mmdebstrap")
    directory.mkdir(parents=True, exist_ok=True)
    _sweep(directory)
    work = directory / f".{key}.{os.getpid()}{_TMP_SUFFIX}"
    remove_tree(work)
    tools_config = dataclasses.replace(config, variant="essential", architecture=host_architecture(),
                                       packages=(machine.emulator_package, machine.firmware_package))
    # no manuals, translations or changelogs (57 of 253 MB), no package lists once installed
    argv = bootstrap.mmdebstrap_command(tools_config, work, [
        *(f"--dpkgopt=path-exclude=/usr/share/{part}/*" for part in ("man", "locale", "doc")),
        '--customize-hook=rm -rf "$1"/var/lib/apt/lists/*'])
    root.console.info(f"bootc: making the boot tools ({machine.emulator_package} and {machine.firmware_package} "
                      f"from {config.suite}) with mmdebstrap, once")
    sink = runner.LineCollector()
    try:
        if root.run_on_host(argv, sink, network=True) != 0:
            tail = "\n".join(line for line in sink.lines[-15:] if line.strip())
            raise BootstrapError(f"mmdebstrap could not make the boot tools:\n{tail}")
        status = dpkg_status.read_status([str(work)]) or b""
        versions = {p["name"]: p["version"] for p in dpkg_status.installed_packages(status)}
        (work / INFO).write_text(f"{major_version(versions.get(machine.emulator_package, ''))}\n")
        try:
            work.rename(directory / key)
        except OSError:
            if not (directory / key / INFO).is_file():
                raise  # not another run's finished tree in the way
    finally:
        remove_tree(work)


def major_version(version: str) -> int:
    """The upstream major number of a Debian version ("1:10.0.13+ds-0+deb13u1" → 10); 0 when there is none."""
    upstream = version.partition(":")[2] if ":" in version else version
    major = upstream.split(".")[0]
    return int(major) if major.isdigit() else 0


def _sweep(directory: Path) -> None:
    """Delete temporary trees whose bootstrap died with its run (its pid is gone)."""
    for entry in directory.iterdir():
        parts = entry.name.rsplit(".", 2)
        if not entry.name.startswith(".") or not entry.name.endswith(_TMP_SUFFIX) or len(parts) != 3:
            continue
        pid = parts[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists() and not entry.is_symlink():
            remove_tree(entry)
