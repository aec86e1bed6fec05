"""Running binaries of another architecture in a root: qemu-user through binfmt_misc.

binfmt_misc registrations do not survive a reboot, so they are checked (and
enabled when possible) before the first command of a run enters a foreign
root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from deb_mock.errors import ArchError

#: Debian architecture -> qemu-user binary format name
QEMU_ARCH = {
    "arm64": "aarch64",
    "armhf": "arm",
    "armel": "arm",
    "i386": "i386",
    "ppc64el": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64el": "mips64el",
    "amd64": "x86_64",
}


def machine() -> str:
    """The kernel's machine name (uname -m), without importing platform (2 ms of every start)."""
    return os.uname().machine


#: uname's machine -> the Debian architecture whose binaries that kernel runs natively
KERNEL_NATIVE = {"x86_64": "amd64", "aarch64": "arm64"}


def host_architecture() -> str:
    """The host's Debian architecture (dpkg's answer, or one derived from uname)."""
    dpkg = shutil.which("dpkg")
    if dpkg:
        result = subprocess.run([dpkg, "--print-architecture"], capture_output=True, text=True, check=False)
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip()
    name = machine()
    return KERNEL_NATIVE.get(name, name)


def ensure_foreign_arch_support(architecture: str) -> str | None:
    """Make sure binaries of ``architecture`` run here (qemu-user + binfmt_misc).

    Returns a note of what was enabled, or None if nothing was needed. Raises
    :class:`ArchError` with the packages to install when it cannot work.
    """
    if architecture == KERNEL_NATIVE.get(machine()):
        return None  # the kernel runs these itself, whatever dpkg says: no dpkg run on every entry
    host = host_architecture()
    if architecture == host or (host == "amd64" and architecture == "i386"):
        return None
    qemu = QEMU_ARCH.get(architecture)
    if qemu is None:
        raise ArchError(f"architecture '{architecture}' is not known to deb-mock")
    if _arch_runs(architecture):
        return None
    interpreter = shutil.which(f"qemu-{qemu}-static") or shutil.which(f"qemu-{qemu}")
    if interpreter is None or shutil.which("update-binfmts") is None:
        raise ArchError(
            f"cannot run {architecture} binaries on this {host} host",
            hint="install qemu-user-static binfmt-support arch-test (apt-get install ...)",
        )
    misc = Path("/proc/sys/fs/binfmt_misc")
    if not (misc / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(misc)], check=False,
                       capture_output=True)
    subprocess.run(["update-binfmts", "--enable", f"qemu-{qemu}"], check=False, capture_output=True)
    if not _arch_runs(architecture):
        raise ArchError(
            f"cannot run {architecture} binaries even after enabling binfmt qemu-{qemu}",
            hint="check `arch-test " + architecture + "` and `update-binfmts --display`",
        )
    return f"enabled binfmt_misc emulation for {architecture} (qemu-{qemu})"


def _arch_runs(architecture: str) -> bool:
    arch_test = shutil.which("arch-test")
    if arch_test is None:
        raise ArchError(
            f"cannot check whether {architecture} binaries run here",
            hint="apt-get install arch-test qemu-user-static binfmt-support",
        )
    result = subprocess.run([arch_test, architecture], capture_output=True, text=True, check=False)
    return result.returncode == 0
