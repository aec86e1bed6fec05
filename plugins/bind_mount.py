"""bind_mount: bind host directories or files into every sandbox entry.

Config::

    plugins:
      bind_mount:
        mounts:
          - {source: /srv/data, target: /data, readonly: true}
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from deb_mock import hookimpl
from deb_mock.errors import ConfigError
from deb_mock.sandbox.spec import Bind, Mount

if TYPE_CHECKING:
    from deb_mock.services import RootServices

PLUGIN_NAME = "bind_mount"


@dataclasses.dataclass(frozen=True)
class BindMountEntry:
    """One bind mount: host ``source`` at ``target`` inside the root."""

    source: str
    target: str
    readonly: bool = True


@dataclasses.dataclass(frozen=True)
class Settings:
    """The ``plugins.bind_mount`` section."""

    enabled: bool = True
    mounts: tuple[BindMountEntry, ...] = ()


@hookimpl
def debmock_config_sections() -> dict[str, type]:
    return {PLUGIN_NAME: Settings}


@hookimpl
def debmock_configure(root: RootServices) -> None:
    settings: Settings = root.config.plugin(PLUGIN_NAME)
    for entry in settings.mounts:
        if not Path(entry.source).exists():
            raise ConfigError(f"plugins.bind_mount: source '{entry.source}' does not exist on the host")
        if not entry.target.startswith("/"):
            raise ConfigError(f"plugins.bind_mount: target '{entry.target}' must be an absolute path")


@hookimpl
def debmock_mounts(root: RootServices, purpose: str) -> list[Mount]:
    settings: Settings = root.config.plugin(PLUGIN_NAME)
    return [Bind(e.source, e.target, readonly=e.readonly) for e in settings.mounts]
