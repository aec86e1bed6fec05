"""ccache: a compiler cache per source package that hits across versions.

mock's users see ccache miss after every version bump because the cache is
keyed by the build path, which contains the version. Here the cache is one
directory per *source package name*, and ccache is told to hash paths
relative to the build directory (CCACHE_BASEDIR, CCACHE_NOHASHDIR), so
``hello 2.12`` reuses what ``hello 2.11`` compiled. Off by default, as in mock.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from deb_mock import hookimpl
from deb_mock.errors import ConfigError
from deb_mock.sandbox.spec import Bind, Mount
from deb_mock.services import Purpose

if TYPE_CHECKING:
    from deb_mock.builder import BuildContext
    from deb_mock.services import RootServices

PLUGIN_NAME = "ccache"
CCACHE_DIR = "/var/cache/deb-mock-ccache"
_SIZE = re.compile(r"^\d+(\.\d+)?[kMGT]?i?$")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The ``plugins.ccache`` section."""

    enabled: bool = False
    #: ccache's max_size for each source package's cache
    max_size: str = "4G"
    #: where the caches live; empty: <cache_topdir>/ccache
    dir: str | None = None


@hookimpl
def debmock_config_sections() -> dict[str, type]:
    return {PLUGIN_NAME: Settings}


@hookimpl
def debmock_scrub_kinds() -> list[str]:
    return ["c-cache", "ccache", "cache"]


def cache_root(root: RootServices) -> Path:
    settings: Settings = root.config.plugin(PLUGIN_NAME)
    return Path(settings.dir) if settings.dir else Path(root.config.cache_topdir) / "ccache"


@hookimpl
def debmock_configure(root: RootServices) -> None:
    settings: Settings = root.config.plugin(PLUGIN_NAME)
    if not _SIZE.match(settings.max_size):
        raise ConfigError(f"plugins.ccache: max_size '{settings.max_size}' is not a size (500M, 4G)")


@hookimpl
def debmock_build_packages(root: RootServices) -> list[str]:
    return ["ccache"]


def _cache_for(root: RootServices, build: BuildContext) -> Path:
    directory = cache_root(root) / build.source.name
    directory.mkdir(parents=True, exist_ok=True)
    os.chown(directory, root.config.build_uid, root.config.build_uid)
    return directory


@hookimpl
def debmock_build_mounts(root: RootServices, build: BuildContext) -> list[Mount]:
    return [Bind(str(_cache_for(root, build)), CCACHE_DIR, readonly=False)]


@hookimpl
def debmock_build_environment(root: RootServices, build: BuildContext) -> dict[str, str]:
    settings: Settings = root.config.plugin(PLUGIN_NAME)
    return {
        "PATH": "/usr/lib/ccache",
        "CCACHE_DIR": CCACHE_DIR,
        "CCACHE_BASEDIR": build.build_dir,
        "CCACHE_NOHASHDIR": "true",
        "CCACHE_MAXSIZE": settings.max_size,
    }


@hookimpl
def debmock_post_build(root: RootServices, build: BuildContext) -> None:
    """ccache.log: the cache's statistics after the build."""
    log = build.resultdir / "ccache.log"
    mounts: list[Mount] = [Bind(str(_cache_for(root, build)), CCACHE_DIR, readonly=False)]
    collector = []
    with root.logs.sink("ccache-stats") as sink:
        returncode = root.run_in_root(["ccache", "--show-stats", "--verbose"], purpose=Purpose.QUERY, sink=sink,
                                      root_fs=build.root_fs, unpriv=True, mounts=mounts, network=False,
                                      env={"CCACHE_DIR": CCACHE_DIR})
        collector = list(sink.tail)
    if returncode == 0:
        log.write_text("\n".join(collector) + "\n", encoding="utf-8")


@hookimpl
def debmock_scrub(root: RootServices, kinds: frozenset[str]) -> None:
    if kinds & {"c-cache", "ccache", "cache", "all"}:
        from deb_mock.layerstore import remove_tree

        remove_tree(cache_root(root))
