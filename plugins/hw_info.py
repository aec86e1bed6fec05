"""hw_info: record the host's hardware in hw_info.log, as mock does.

A slow or failed build is often explained by the machine it ran on; the log
travels with the results.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

from deb_mock import hookimpl

if TYPE_CHECKING:
    from deb_mock.builder import BuildContext
    from deb_mock.services import RootServices

PLUGIN_NAME = "hw_info"


@dataclasses.dataclass(frozen=True)
class Settings:
    """The ``plugins.hw_info`` section."""

    enabled: bool = True


@hookimpl
def debmock_config_sections() -> dict[str, type]:
    return {PLUGIN_NAME: Settings}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return os.uname().machine or "unknown"


def describe_host(storage: Path) -> list[str]:
    """Lines for hw_info.log: CPU, memory, storage of ``storage``, kernel, distribution."""
    import distro  # imported where used: runs that write no hw_info.log start faster
    import psutil

    memory = psutil.virtual_memory()
    swap = psutil.swap_memory()
    lines = [
        "CPU info:",
        f"  model: {_cpu_model()}",
        f"  logical CPUs: {psutil.cpu_count(logical=True)} (usable: {len(os.sched_getaffinity(0))})",
        f"  load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        "Memory:",
        f"  total: {memory.total // 2**20} MiB, available: {memory.available // 2**20} MiB",
        f"  swap: {swap.total // 2**20} MiB",
    ]
    probe = storage if storage.exists() else Path("/")
    usage = psutil.disk_usage(str(probe))
    lines += [
        "Storage:",
        f"  {probe}: {usage.total // 2**30} GiB, free {usage.free // 2**30} GiB",
        "Host:",
        f"  kernel: {os.uname().release} {os.uname().machine}",
        f"  distribution: {distro.name(pretty=True) or 'unknown'}",
    ]
    return lines


@hookimpl
def debmock_pre_build(root: RootServices, build: BuildContext) -> None:
    """As mock's hw_info: with every build (a --chroot or --shell does not pay for the probe)."""
    _write(root, build.resultdir)


@hookimpl
def debmock_root_initialized(root: RootServices, restored: bool) -> None:
    _write(root)


def _write(root: RootServices, resultdir: Path | None = None) -> None:
    lines = describe_host(Path(root.config.basedir))
    ((resultdir or root.resultdir) / "hw_info.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
