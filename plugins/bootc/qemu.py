"""Boot a disk image in qemu with UEFI firmware and the serial console on the terminal (as `mkosi qemu`).

The image itself is never written: qemu boots a throw-away qcow2 overlay of
it. qemu dies with deb-mock (parent-death signal). With a timeout the run is
a boot check: it succeeds when the login prompt appears on the serial console.
The machine follows the image: its root partition's type (the Discoverable
Partitions Specification's code per architecture) picks qemu-system-x86_64
with OVMF or qemu-system-aarch64 with AAVMF.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from deb_mock.errors import DebMockError, ExitCode, TimedOut, UsageError
from deb_mock.foreign_arch import host_architecture
from deb_mock.sandbox.runner import close_pipes

from .boot_dirs import boot_directory
from .disk import ROOT_TYPE
from .formats import BOOTABLE
from .settings import DEFAULT_VCPUS

#: UEFI firmware (the ovmf package) for amd64
OVMF_CODE = ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_CODE.fd")
OVMF_VARS = ("/usr/share/OVMF/OVMF_VARS_4M.fd", "/usr/share/OVMF/OVMF_VARS.fd")
#: UEFI firmware (the qemu-efi-aarch64 package) for arm64
AAVMF_CODE = ("/usr/share/AAVMF/AAVMF_CODE.fd",)
AAVMF_VARS = ("/usr/share/AAVMF/AAVMF_VARS.fd",)


#: q35 with smm, sata, smbus, i8042 and vmport off (see MACHINES)
AMD64_BOARD = "q35,smm=off,sata=off,smbus=off,i8042=off,vmport=off"


@dataclasses.dataclass(frozen=True)
class Machine:
    """What boots one architecture's images: the emulator, its machine and CPU, the firmware's package."""

    emulator: str
    emulator_package: str
    machine: tuple[str, ...]
    #: the CPU model under TCG (under KVM: the host's own CPU)
    tcg_cpu: str
    code: tuple[str, ...]
    variables: tuple[str, ...]
    firmware_package: str
    #: the first qemu version whose TCG runs this guest's vCPUs one thread each (see tcg_threads)
    multi_thread_since: int

    def tcg_threads(self, qemu_version: int) -> str:
        """TCG's vCPU threads for this qemu (major version; 0: unknown): one each where it holds, else one.

        qemu 7.2 (Debian 12) with a thread per vCPU was seen to panic trixie
        amd64 guests early in boot: the kernel jumped into the middle of an
        instruction while it patched its own code on the other vCPU. trixie's
        qemu 10.0 boots them so, on both host cores: 29.7 and 30.3 s to login
        against 42.8 and 49.0 s with one thread, alternating in one hour.
        """
        return "multi" if qemu_version >= self.multi_thread_since else "single"

    def vcpus(self, accel: str, configured: int, threads: str) -> int:
        """The configured vCPUs; 0: one where TCG runs every vCPU in one thread, else two.

        Two vCPUs on one TCG thread take turns, and the guest spends the
        turns of the idle one waiting for it: a trixie boot to login took
        68-71 s with one vCPU and 74-75 s with two (udevd alone 7 s of CPU
        time against 17-27 s).
        """
        if configured:
            return configured
        return 1 if accel == "tcg" and threads == "single" else DEFAULT_VCPUS


MACHINES = {
    # -nodefaults: no DVD drive (the firmware tried to boot it, the kernel probed it: 2-3 s of a TCG boot) and no VGA.
    # qemu64 without SVM under TCG: with "max" the guest's glibc picked its AVX2 routines and the kernel loaded
    # kvm, AES-NI, SHA and CLMUL modules (self-tests included), all emulated: boots to login took 97-105 s
    # against 74-75 s with qemu64,-svm, in the same hour (udevd alone 38-47 s of CPU time against 17-27 s)
    # The board without what a guest on a virtio disk and a serial console never uses, but the firmware and the
    # kernel set up and probe on every boot: SMM (OVMF_CODE_4M without secure boot does not need it), the
    # AHCI controller, the SMBus, the PS/2 controller and VMware's I/O port. Alternating boots of one image in
    # one hour: 61.2 and 57.1 s to login with the full q35, 54.8 and 52.0 s without them.
    "amd64": Machine("qemu-system-x86_64", "qemu-system-x86", ("-machine", AMD64_BOARD, "-nodefaults"), "qemu64,-svm",
                     OVMF_CODE, OVMF_VARS, "ovmf", 10),
    # pauth-impdef: the CPU's own pointer-authentication hash, which TCG computes many times faster
    # than the architected QARMA one (a guest cannot tell the difference)
    "arm64": Machine("qemu-system-aarch64", "qemu-system-arm", ("-machine", "virt"), "max,pauth-impdef=on",
                     AAVMF_CODE, AAVMF_VARS, "qemu-efi-aarch64", 0),
}
GPT_HEADER_LBA, SECTOR = 1, 512
LOGIN_PROMPT = b" login: "
#: what the guest kernel prints when it gives up: no login prompt will follow
KERNEL_PANIC = b"Kernel panic - not syncing"
#: a cursor position query (DSR): systemd asks the serial terminal's size with two of them before each
#: getty, and waits a third of a second for each answer a pipe never gives
POSITION_QUERY = b"\x1b[6n"
#: the answer of a 24x80 terminal: its cursor at the bottom right corner (CPR)
POSITION_REPLY = b"\x1b[24;80R"
PR_SET_PDEATHSIG = 1


class BootTimeout(TimedOut):
    """The image did not reach a login prompt in time."""


class GuestPanicked(TimedOut):
    """The guest kernel panicked during a boot check: the login prompt will never come (exit 11 as well)."""


class MissingTool(DebMockError):
    """A host tool needed to boot is not installed."""

    exit_code = ExitCode.EXTERNAL_DEP


def _first(paths: Sequence[str], package: str) -> str:
    for path in paths:
        if os.path.exists(path):
            return path
    raise MissingTool(f"UEFI firmware not found ({paths[0]})", hint=f"apt-get install {package}")


@dataclasses.dataclass(frozen=True)
class BootFiles:
    """The files of one boot as qemu sees them (host paths, or paths in the boot tools' sandbox)."""

    code: str
    variables: str
    disk: str
    drives: tuple[str, ...]


class Launcher(Protocol):
    """Where qemu comes from and runs: the host's (HostQemu) or the run's release's in a sandbox (boot_tools)."""

    def prepare(self, machine: Machine, boot_dir: Path, image: Path, drives: Sequence[Path]) -> BootFiles:
        """Make sure the emulator and firmware are there; the fresh variables' copy; the files as qemu sees them."""

    def qemu_version(self, machine: Machine) -> int:
        """The emulator's major version (0: unknown)."""

    def interactive(self, argv: list[str]) -> int:
        """Run qemu on the caller's terminal until it ends; its exit status."""

    def piped(self, argv: list[str]) -> AbstractContextManager[subprocess.Popen[bytes]]:
        """qemu with its standard input and output on pipes; stopped when the block ends."""


def qemu_command(machine: Machine, files: BootFiles, *, accel: str, memory: str, cpus: int,
                 qemu_version: int = 0) -> list[str]:
    """The qemu command line: the machine's board and CPU, UEFI, virtio disk, serial console on stdio, no network.

    TCG runs the vCPUs one thread each where this qemu holds it for the guest
    (Machine.tcg_threads), else all in one thread.
    """
    tcg = accel == "tcg"
    threads = machine.tcg_threads(qemu_version)
    argv = [machine.emulator, *machine.machine, "-cpu", machine.tcg_cpu if tcg else "host",
            "-accel", f"tcg,thread={threads}" if tcg else accel,
            "-m", memory, "-smp", str(machine.vcpus(accel, cpus, threads)), "-display", "none", "-serial", "stdio",
            "-monitor", "none", "-nic", "none", "-no-user-config",
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={files.code}",
            "-drive", f"if=pflash,format=raw,unit=1,file={files.variables}",
            "-drive", f"if=virtio,format=qcow2,file={files.disk}"]
    for drive in files.drives:
        argv += ["-drive", f"if=virtio,format=raw,readonly=on,file={drive}"]
    return argv


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class HostQemu:
    """qemu and its firmware as the host has them installed (qemu_from: host, KVM and rootless runs)."""

    def prepare(self, machine: Machine, boot_dir: Path, image: Path, drives: Sequence[Path]) -> BootFiles:
        if shutil.which(machine.emulator) is None:
            raise MissingTool(f"{machine.emulator} is not installed",
                              hint=f"apt-get install {machine.emulator_package}")
        code = _first(machine.code, machine.firmware_package)
        shutil.copyfile(_first(machine.variables, machine.firmware_package), boot_dir / "vars.fd")
        return BootFiles(code, str(boot_dir / "vars.fd"), str(boot_dir / "disk.qcow2"),
                         tuple(str(d.absolute()) for d in drives))

    def qemu_version(self, machine: Machine) -> int:
        shown = subprocess.run([machine.emulator, "--version"], capture_output=True, text=True, check=False)
        found = re.search(r"version (\d+)\.", shown.stdout)
        return int(found.group(1)) if found else 0

    def interactive(self, argv: list[str]) -> int:
        process = subprocess.Popen(argv, preexec_fn=_die_with_parent)
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.kill()
            process.wait()
            raise

    @contextlib.contextmanager
    def piped(self, argv: list[str]) -> Iterator[subprocess.Popen[bytes]]:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   preexec_fn=_die_with_parent)
        try:
            yield process
        finally:
            process.kill()
            process.wait()
            close_pipes(process)


def boot(image: Path, *, accel: str, memory: str, cpus: int, drives: Sequence[Path], timeout: float | None,
         echo: bool = True, size: int | None = None, launcher: Launcher | None = None) -> float:
    """Boot ``image``; interactive without ``timeout``, else wait for the login prompt. Returns seconds taken."""
    if not image.is_file():
        raise UsageError(f"--bootc-run {image}: no such image file")
    for drive in drives:
        if not drive.is_file():
            raise UsageError(f"--bootc-run-drive {drive}: no such file")
    if shutil.which("qemu-img") is None:
        raise MissingTool("qemu-img is not installed", hint="apt-get install qemu-utils")
    if size is not None:
        _check_size(image, size)
    launcher = launcher or HostQemu()
    with boot_directory() as tmp:
        overlay = tmp / "disk.qcow2"
        fmt = BOOTABLE.get(image.suffix.lower(), "raw")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", fmt, "-b", str(image.absolute()),
                        str(overlay), *([str(size)] if size else [])], check=True, stderr=subprocess.PIPE)
        machine = MACHINES[image_architecture(image, overlay)]
        files = launcher.prepare(machine, tmp, image, drives)
        argv = qemu_command(machine, files, accel=accel, memory=memory, cpus=cpus,
                            qemu_version=launcher.qemu_version(machine) if accel == "tcg" else 0)
        started = time.monotonic()  # the boot's own time: not the boot tools' first bootstrap
        if timeout is None:
            launcher.interactive(argv)
            return time.monotonic() - started
        with launcher.piped(argv) as process:
            return _boot_check(process, timeout, started, echo)


def image_architecture(image: Path, overlay: Path) -> str:
    """The architecture whose root partition type the image's GPT holds (read through the qcow2 overlay).

    An image without one (another tool's disk, a generic Linux partition)
    boots as the host's architecture, as --bootc-run always did.
    """
    head = overlay.with_name("head.raw")
    dumped = subprocess.run(["qemu-img", "dd", "-f", "qcow2", "-O", "raw", f"bs={SECTOR}", "count=34",
                             f"if={overlay}", f"of={head}"], capture_output=True, text=True, check=False)
    if dumped.returncode != 0:
        raise UsageError(f"--bootc-run {image}: qemu-img cannot read it ({dumped.stderr.strip()})")
    found = partition_types(head.read_bytes())
    for arch, code in ROOT_TYPE.items():
        if code in found:
            return arch
    host = host_architecture()
    if host not in MACHINES:
        raise UsageError(f"--bootc-run {image}: no root partition of a known architecture "
                         f"({', '.join(sorted(ROOT_TYPE))}) in its partition table, and no machine for this "
                         f"{host} host")
    return host


def partition_types(head: bytes) -> set[str]:
    """The partition type GUIDs (upper case) of a GPT whose first 34 sectors are ``head``; empty if none."""
    header = head[GPT_HEADER_LBA * SECTOR:(GPT_HEADER_LBA + 1) * SECTOR]
    if header[:8] != b"EFI PART":
        return set()
    first_lba = int.from_bytes(header[72:80], "little")
    count = int.from_bytes(header[80:84], "little")
    entry_size = int.from_bytes(header[84:88], "little")
    found = set()
    for index in range(count):
        start = first_lba * SECTOR + index * entry_size
        type_bytes = head[start:start + 16]
        if len(type_bytes) < 16:
            break
        if any(type_bytes):
            found.add(str(uuid.UUID(bytes_le=type_bytes)).upper())
    return found


def _check_size(image: Path, size: int) -> None:
    """--bootc-run-size may grow the throw-away overlay, never shrink it below the image."""
    info = subprocess.run(["qemu-img", "info", "--output=json", str(image)], capture_output=True, text=True,
                          check=False)
    try:
        current = int(json.loads(info.stdout)["virtual-size"])
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"--bootc-run {image}: qemu-img cannot read it ({info.stderr.strip()})") from None
    if size < current:
        raise UsageError(f"--bootc-run-size: {size} bytes is smaller than the image ({current} bytes)")


def terminal_replies(seen: bytes, chunk: bytes) -> bytes:
    """What a terminal would answer to the queries in ``chunk`` (``seen``: the output before it)."""
    return POSITION_REPLY * (seen[-len(POSITION_QUERY) + 1:] + chunk).count(POSITION_QUERY)


def _boot_check(process: subprocess.Popen[bytes], timeout: float, started: float, echo: bool) -> float:
    """Wait for the login prompt, answering the console's size queries as a 24x80 terminal would."""
    assert process.stdout is not None and process.stdin is not None
    seen = b""
    while time.monotonic() - started < timeout:
        ready, _, _ = select.select([process.stdout], [], [], 1.0)
        if not ready:
            if process.poll() is not None:
                break
            continue
        chunk = os.read(process.stdout.fileno(), 65536)
        if not chunk:
            break
        if echo:  # firmware and consoles send stray bytes: pass on valid UTF-8 only
            sys.stderr.buffer.write(chunk.decode(errors="replace").encode())
            sys.stderr.buffer.flush()
        reply = terminal_replies(seen, chunk)
        if reply:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.write(reply)
                process.stdin.flush()
        seen = (seen + chunk)[-4096:]
        if LOGIN_PROMPT in seen:
            return time.monotonic() - started
        if KERNEL_PANIC in seen:
            time.sleep(0.5)  # the panic's own lines follow at once
            break
    tail = seen.decode(errors="replace").strip().splitlines()[-5:]
    if KERNEL_PANIC in seen:
        panic = next(line for line in seen.decode(errors="replace").splitlines() if "Kernel panic" in line)
        raise GuestPanicked(f"the guest kernel panicked after {time.monotonic() - started:.0f}s: {panic.strip()}")
    raise BootTimeout(f"no login prompt on the serial console within {timeout:.0f}s; last lines:\n"
                      + "\n".join(tail))
