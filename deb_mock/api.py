"""The Python entry point for orchestrators: open a root the way the CLI does.

    from deb_mock.api import open_root

    with open_root("trixie-amd64", uniqueext="job42") as root:
        root.init()
        root.install(["hello"])
        status = root.chroot(["hello"])
    print(root.result.to_json())          # the same object result.json holds
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from deb_mock.config import Override, load_config
from deb_mock.logs import Console
from deb_mock.plugin_manager import config_sections, drop_disabled, make_plugin_manager
from deb_mock.root import Root, RunOptions


def make_root(
    config: str | None = None,
    *,
    config_opts: Mapping[str, Any] | None = None,
    options: RunOptions | None = None,
    console: Console | None = None,
) -> Root:
    """A Root for chroot config ``config`` (a name, a path, or None for the default)."""
    plugins = make_plugin_manager()
    overrides = [Override(key, value, "api") for key, value in (config_opts or {}).items()]
    loaded = load_config(config, overrides, config_sections(plugins))
    drop_disabled(plugins, loaded.config.plugins)
    return Root(loaded, plugins, console or Console(json_mode=False, quiet=True, verbose=False), options,
                all_plugins=make_plugin_manager())


@contextlib.contextmanager
def open_root(
    config: str | None = None,
    *,
    uniqueext: str | None = None,
    resultdir: Path | None = None,
    config_opts: Mapping[str, Any] | None = None,
    mode: str = "api",
) -> Iterator[Root]:
    """Lock a root and run the configure/unconfigure hooks around the caller's work."""
    root = make_root(config, config_opts=config_opts,
                     options=RunOptions(uniqueext=uniqueext, resultdir=resultdir))
    with root.session(mode):
        yield root
