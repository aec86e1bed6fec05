"""tmpfs: put directories of the root, or whole clean builds, in RAM, capped in size.

Config::

    plugins:
      tmpfs:
        enabled: true
        mounts:
          - {target: /build, size: 4G, mode: 01777}
        upper: true          # every clean build's writable layer (build deps + build tree) in RAM
        upper_size: 8G

``upper`` puts the run's scratch space on a tmpfs that lives in the run's own
mount namespace (never on the host) for as long as deb-mock runs, so every
step of a build (dependencies, unpack, build, results) works in RAM and the
build is dropped in milliseconds. Cached build-dependency layers are still used (as
lower layers); new ones are not saved, since a layer in RAM cannot be renamed to disk.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

from deb_mock import hookimpl
from deb_mock.errors import ConfigError
from deb_mock.sandbox.spec import Mount, Tmpfs

if TYPE_CHECKING:
    from deb_mock.services import RootServices

PLUGIN_NAME = "tmpfs"
_SIZE = re.compile(r"^(\d+[kmgKMG]?|\d{1,3}%)$")


@dataclasses.dataclass(frozen=True)
class TmpfsEntry:
    """One tmpfs at ``target`` inside the root, at most ``size`` (tmpfs syntax: 512M, 2G, 50%)."""

    target: str
    size: str = "2G"
    mode: int = 0o755


@dataclasses.dataclass(frozen=True)
class Settings:
    """The ``plugins.tmpfs`` section (off by default, as in mock)."""

    enabled: bool = False
    #: /build in RAM by default; sticky and world-writable so the build user can work in it
    mounts: tuple[TmpfsEntry, ...] = (TmpfsEntry(target="/build", mode=0o1777),)
    #: clean builds' writable layers in RAM (then ``mounts`` is usually left empty)
    upper: bool = False
    #: the cap of that RAM (tmpfs size)
    upper_size: str = "8G"


@hookimpl
def debmock_config_sections() -> dict[str, type]:
    return {PLUGIN_NAME: Settings}


@hookimpl
def debmock_configure(root: RootServices) -> None:
    settings: Settings = root.config.plugin(PLUGIN_NAME)
    if not _SIZE.match(settings.upper_size):
        raise ConfigError(f"plugins.tmpfs: upper_size '{settings.upper_size}' is not a tmpfs size (4G, 50%)")
    for entry in settings.mounts:
        if not _SIZE.match(entry.size):
            raise ConfigError(f"plugins.tmpfs: size '{entry.size}' is not a tmpfs size (512M, 2G, 50%)")
        if not entry.target.startswith("/") or entry.target == "/":
            raise ConfigError(f"plugins.tmpfs: target '{entry.target}' must be an absolute path below /")


@hookimpl
def debmock_mounts(root: RootServices, purpose: str) -> list[Mount]:
    settings: Settings = root.config.plugin(PLUGIN_NAME)
    return [Tmpfs(e.target, size=e.size, mode=e.mode) for e in settings.mounts]


@hookimpl
def debmock_session_mounts(root: RootServices) -> list[Tmpfs]:
    settings: Settings = root.config.plugin(PLUGIN_NAME)
    if not settings.upper:
        return []
    return [Tmpfs(str(root.paths.top / "scratch"), size=settings.upper_size, mode=0o755)]
