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

A tree older than ``plugins.bootc.qemu_tools_max_age_days`` is made anew
(qemu's security updates reach it so), and swapped in with one atomic rename
exchange; the old tree is deleted once no boot holds its mark's lock (each
boot holds a shared flock on it until it ends). A renewal that fails (no
network, say) leaves the old tree in use, with a warning.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from deb_mock import bootstrap, dpkg_status
from deb_mock.errors import BootstrapError
from deb_mock.foreign_arch import host_architecture
from deb_mock.layerstore import remove_tree
from deb_mock.locks import try_lock
from deb_mock.sandbox import runner
from deb_mock.sandbox.spec import DEFAULT_PATH, Bind, OverlayRoot, SandboxSpec

from .formats import BOOTABLE
from .image_layers import digest_of
from .qemu import BootFiles, Machine, MissingTool
from .settings import PLUGIN_NAME

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
#: a renewed tree's predecessor is named .<key>.<pid>.old until no boot holds it
_OLD_SUFFIX = ".old"


def tools_dir(config: Config) -> Path:
    """Where the boot tools' trees live: shared by every root of this cache directory."""
    return Path(config.cache_topdir) / "bootc-tools"


@dataclasses.dataclass(frozen=True)
class ToolsTree:
    """A finished tree: its path, the emulator's major version (which picks TCG's threads), and the descriptor
    of its mark that this run holds a shared lock on (closed when the run ends)."""

    path: Path
    qemu_version: int
    held: int


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
            marker=f"{self.root.process_tag}#boot:{self._boot_dir.name}",  # holds no lock: not the root's run
            id_map=self.root.id_map(),
            capabilities=(),
        )


def tree_key(config: Config, machine: Machine) -> str:
    """What makes a tree: the release and its archive, the host's architecture, the packages."""
    return digest_of(TOOLS_FORMAT, config.suite, config.mirror, config.components, config.keyrings,
                     config.apt_options, host_architecture(), machine.emulator_package, machine.firmware_package)


def ensure_tree(root: RootServices, machine: Machine) -> ToolsTree:
    """The finished tools tree for ``machine``, held for this run: bootstrapped first if there is none,
    made anew first if it is older than ``qemu_tools_max_age_days`` (unless offline)."""
    config = root.config
    directory = tools_dir(config)
    key = tree_key(config, machine)
    tree = directory / key
    if directory.is_dir():
        _sweep(directory)  # an old tree a boot held when it was renewed goes with the next boot
    if not (tree / INFO).is_file():
        _bootstrap(root, machine, directory, key)
    else:
        days = (time.time() - (tree / INFO).lstat().st_mtime) / 86400
        if days > config.plugin(PLUGIN_NAME).qemu_tools_max_age_days and not config.offline:
            root.console.info(f"bootc: the boot tools are {days:.0f} days old (qemu_tools_max_age_days): "
                              "making them anew")
            try:
                _bootstrap(root, machine, directory, key, renew=True)
            except (BootstrapError, MissingTool) as exc:
                root.console.warn(f"bootc: the boot tools could not be made anew; booting with the "
                                  f"{days:.0f}-day-old ones: {exc.message}")
    held = _hold(tree)
    return ToolsTree(tree, major_version(os.read(held, 64).decode().strip()), held)


def _hold(tree: Path) -> int:
    """A shared lock on the mark of the tree now at ``tree``: no renewal deletes it while this run boots."""
    for _ in range(20):
        fd = os.open(tree / INFO, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_SH)
        try:
            if os.stat(tree / INFO, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # a renewal swapped the trees between the open and the lock: hold the new one
        time.sleep(0.05)
    raise BootstrapError(f"the boot tools in {tree} keep changing under this run")


#: the finished tree's mark, which holds the emulator's major version
INFO = "deb-mock-qemu-version"


def _bootstrap(root: RootServices, machine: Machine, directory: Path, key: str, *, renew: bool = False) -> None:
    """mmdebstrap the tree under a temporary name, record qemu's version, rename it into place
    (``renew``: exchange it with the tree there, whose predecessor is deleted once no boot holds it)."""
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
                      f"from {config.suite}) with mmdebstrap" + ("" if renew else ", once"))
    sink = runner.LineCollector()
    try:
        if root.run_on_host(argv, sink, network=True, marker=f"{root.process_tag}#boot-tools") != 0:
            tail = "\n".join(line for line in sink.lines[-15:] if line.strip())
            raise BootstrapError(f"mmdebstrap could not make the boot tools:\n{tail}")
        status = dpkg_status.read_status([str(work)]) or b""
        versions = {p["name"]: p["version"] for p in dpkg_status.installed_packages(status)}
        # never through a link the tree may hold: the write runs as the caller, on the host
        bootstrap.write_in_tree(work, INFO, f"{major_version(versions.get(machine.emulator_package, ''))}\n")
        put_in_place(work, directory / key, renew=renew)
    finally:
        remove_tree(work)


def put_in_place(work: Path, tree: Path, *, renew: bool) -> None:
    """Rename the finished ``work`` to ``tree``; ``renew``: exchange the two, set the old tree aside
    (.<key>.<pid>.old) and delete it unless a boot holds it."""
    if not renew:
        try:
            work.rename(tree)
        except OSError:
            if not (tree / INFO).is_file():
                raise  # not another run's finished tree in the way
        return
    try:
        _exchange(work, tree)
    except FileNotFoundError:  # the old tree went meanwhile (--scrub=bootc)
        work.rename(tree)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        tree.rename(tree.parent / f".{tree.name}.{os.getpid()}{_OLD_SUFFIX}")  # no exchange here: two renames
        work.rename(tree)
    else:
        work.rename(tree.parent / f".{tree.name}.{os.getpid()}{_OLD_SUFFIX}")
    _sweep(tree.parent)


def _exchange(first: Path, second: Path) -> None:
    """Swap two directories in one step (renameat2 RENAME_EXCHANGE): a boot never finds no tree."""
    import ctypes  # renewals only

    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, rename_exchange = -100, 2
    if libc.renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"exchanging {first} and {second}: {os.strerror(code)}")


def major_version(version: str) -> int:
    """The upstream major number of a Debian version ("1:10.0.13+ds-0+deb13u1" → 10); 0 when there is none."""
    upstream = version.partition(":")[2] if ":" in version else version
    major = upstream.split(".")[0]
    return int(major) if major.isdigit() else 0


def _sweep(directory: Path) -> None:
    """Delete temporary trees whose bootstrap died with its run (its pid is gone), and renewed trees'
    predecessors that no boot holds any more."""
    for entry in directory.iterdir():
        parts = entry.name.rsplit(".", 2)
        if not entry.name.startswith(".") or len(parts) != 3 or entry.is_symlink() or not parts[1].isdigit():
            continue
        dead_bootstrap = entry.name.endswith(_TMP_SUFFIX) and not Path(f"/proc/{parts[1]}").exists()
        if dead_bootstrap or (entry.name.endswith(_OLD_SUFFIX) and not _held(entry)):
            with contextlib.suppress(FileNotFoundError):  # another boot's sweep deletes it too: the rest is its
                remove_tree(entry)


def _held(tree: Path) -> bool:
    """Whether a boot holds ``tree``'s mark (a shared lock); a tree without a mark is held by nobody."""
    try:
        fd = os.open(tree / INFO, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return not try_lock(fd)
    finally:
        os.close(fd)
