"""Build a fresh plugin manager for each root: built-ins, entry points, blocks.

There is no global manager, so two roots in one process (or two tests) never
share plugin state.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from collections.abc import Iterable
from types import ModuleType
from typing import Any

import pluggy

from deb_mock import hookspecs
from deb_mock.errors import ConfigError

#: built-in plugins, registered even when the package metadata is not installed
BUILTIN_PLUGINS: tuple[str, ...] = (
    "deb_mock.plugins.bind_mount",
    "deb_mock.plugins.tmpfs",
    "deb_mock.plugins.hw_info",
    "deb_mock.plugins.lintian",
    "deb_mock.plugins.chroot_scan",
    "deb_mock.plugins.root_cache",
    "deb_mock.plugins.apt_cache",
    "deb_mock.plugins.ccache",
    "deb_mock.plugins.bootc",
)
ENTRY_POINT_GROUP = hookspecs.PROJECT
DISABLE_ENV = "DEB_MOCK_DISABLE_PLUGINS"


@dataclasses.dataclass(frozen=True)
class PluginInfo:
    """What --list-plugins shows of one plugin."""

    name: str
    version: str
    hooks: tuple[str, ...]
    enabled: bool
    source: str


def plugin_name(module: ModuleType) -> str:
    """A plugin's name: its ``PLUGIN_NAME``, else the module's last component."""
    return str(getattr(module, "PLUGIN_NAME", module.__name__.rsplit(".", 1)[-1]))


def make_plugin_manager(disabled: Iterable[str] = ()) -> pluggy.PluginManager:
    """Register built-ins and entry-point plugins, minus blocked names; validate hooks.

    pluggy's loader reads every installed distribution's metadata through
    importlib.metadata (a tenth of a warm --chroot's time); it runs only when
    an entry point names a plugin that is not built in.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    blocked = set(disabled) | {n for n in os.environ.get(DISABLE_ENV, "").split(",") if n}
    for name in blocked:
        pm.set_blocked(name)
    for module_name in BUILTIN_PLUGINS:
        module = importlib.import_module(module_name)
        name = plugin_name(module)
        if not pm.is_blocked(name):
            pm.register(module, name=name)
    if not declared_plugins() <= {plugin_name(m) for m in map(sys.modules.get, BUILTIN_PLUGINS) if m}:
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except ValueError as exc:  # pluggy: a plugin registered twice under another name
            raise ConfigError(f"plugin entry points: {exc}") from None
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        raise ConfigError(f"plugin '{name}' implements an unknown hook: {exc}") from None
    return pm


def declared_plugins() -> set[str]:
    """The plugin names entry points of our group declare, read from the dist-info directories on sys.path."""
    names: set[str] = set()
    for entry in sys.path:
        try:
            listing = os.scandir(entry or ".")
        except OSError:
            continue
        with listing:
            for dist in listing:
                if not dist.name.endswith((".dist-info", ".egg-info")):
                    continue
                try:
                    with open(os.path.join(dist.path, "entry_points.txt"), encoding="utf-8") as handle:
                        names |= _group_names(handle.read())
                except (OSError, UnicodeDecodeError):
                    continue
    return names


def _group_names(text: str) -> set[str]:
    """The names in the ``[deb_mock]`` section of an entry_points.txt."""
    names, in_group = set(), False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            in_group = stripped == f"[{ENTRY_POINT_GROUP}]"
        elif in_group and "=" in stripped and not stripped.startswith(("#", ";")):
            names.add(stripped.split("=", 1)[0].strip())
    return names


@dataclasses.dataclass(frozen=True)
class _Blocked:
    """Stands for the config section of a plugin blocked by DEB_MOCK_DISABLE_PLUGINS.

    Its settings are not checked: the plugin is not loaded, so nobody knows them.
    """

    enabled: bool = False
    UNCHECKED = True


def config_sections(pm: pluggy.PluginManager) -> dict[str, type]:
    """The config dataclass of every registered plugin.

    A plugin blocked through DEB_MOCK_DISABLE_PLUGINS keeps a section that
    accepts nothing but ``enabled``, so configs that mention it still load.
    """
    sections: dict[str, type] = {}
    for result in pm.hook.debmock_config_sections():
        sections.update(result)
    for module_name in BUILTIN_PLUGINS:
        name = module_name.rsplit(".", 1)[-1]
        if pm.is_blocked(name):
            sections.setdefault(name, _Blocked)
    return sections


def drop_disabled(pm: pluggy.PluginManager, plugins_config: dict[str, Any] | Any) -> None:
    """Unregister plugins whose config says ``enabled: false``."""
    for name, settings in plugins_config.items():
        if not getattr(settings, "enabled", True) and pm.get_plugin(name) is not None:
            pm.unregister(name=name)


def describe_plugins(pm_all: pluggy.PluginManager, pm_active: pluggy.PluginManager) -> list[PluginInfo]:
    """Every loaded plugin with its version, hooks and whether this run enables it."""
    infos: list[PluginInfo] = []
    dists = {id(plugin): dist for plugin, dist in pm_all.list_plugin_distinfo()}
    for name, plugin in sorted(pm_all.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:
            continue
        hooks = tuple(sorted(caller.name for caller in pm_all.get_hookcallers(plugin) or ()))
        dist = dists.get(id(plugin))
        version = str(getattr(plugin, "__version__", None) or (dist.version if dist else _own_version()))
        source = f"entry point ({dist.project_name})" if dist and not _is_builtin(plugin) else "built-in"
        infos.append(PluginInfo(name, version, hooks, pm_active.get_plugin(name) is not None, source))
    return infos


def _is_builtin(plugin: object) -> bool:
    return getattr(plugin, "__name__", "") in BUILTIN_PLUGINS


def _own_version() -> str:
    from deb_mock import __version__

    return __version__
