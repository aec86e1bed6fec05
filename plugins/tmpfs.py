"""tmpfs: put directories of the root in RAM, capped in size.

Config::

    plugins:
      tmpfs:
        enabled: true
        mounts:
          - {target: /build, size: 4G}
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

from deb_mock import hookimpl
from deb_mock.errors import ConfigError
from deb_mock.sandbox.spec import Mount, Tmpfs

if TYPE_CHECKING:
    from deb_mock.root import Root

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


@hookimpl
def debmock_config_sections() -> dict[str, type]:
    return {PLUGIN_NAME: Settings}


@hookimpl
def debmock_configure(root: Root) -> None:
    settings: Settings = root.config.plugin(PLUGIN_NAME)
    for entry in settings.mounts:
        if not _SIZE.match(entry.size):
            raise ConfigError(f"plugins.tmpfs: size '{entry.size}' is not a tmpfs size (512M, 2G, 50%)")
        if not entry.target.startswith("/") or entry.target == "/":
            raise ConfigError(f"plugins.tmpfs: target '{entry.target}' must be an absolute path below /")


@hookimpl
def debmock_mounts(root: Root, purpose: str) -> list[Mount]:
    settings: Settings = root.config.plugin(PLUGIN_NAME)
    return [Tmpfs(e.target, size=e.size, mode=e.mode) for e in settings.mounts]
