"""apt_cache: one .deb cache per distribution and architecture, shared by every root.

The cache is bind-mounted on /var/cache/apt/archives for every apt run and
during the bootstrap (mmdebstrap downloads into it and installs from it), so a
package is downloaded once per machine, and ``--offline`` can install from
it. apt runs that share a cache take turns on its lock, held only while apt
runs (apt's own lock in the cache would make a concurrent run fail instead).
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import re
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING

from deb_mock import hookimpl
from deb_mock.errors import ConfigError
from deb_mock.sandbox.spec import Bind, Mount

if TYPE_CHECKING:
    from deb_mock.services import RootServices

PLUGIN_NAME = "apt_cache"
ARCHIVES = "/var/cache/apt/archives"
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._+/-]+$")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The ``plugins.apt_cache`` section."""

    enabled: bool = True
    #: the shared directory; empty: <cache_topdir>/apt-cache/<suite>-<architecture>
    dir: str | None = None


@hookimpl
def debmock_config_sections() -> dict[str, type]:
    return {PLUGIN_NAME: Settings}


@hookimpl
def debmock_scrub_kinds() -> list[str]:
    return ["apt-cache", "cache"]


def cache_dir(root: RootServices) -> Path:
    settings: Settings = root.config.plugin(PLUGIN_NAME)
    if settings.dir:
        return Path(settings.dir)
    return Path(root.config.cache_topdir) / "apt-cache" / f"{root.config.suite}-{root.config.architecture}"


def _prepare(root: RootServices) -> Path:
    directory = cache_dir(root)
    (directory / "partial").mkdir(parents=True, exist_ok=True)
    return directory


@hookimpl
def debmock_configure(root: RootServices) -> None:
    if not _SAFE_PATH.match(str(cache_dir(root))):
        raise ConfigError(f"plugins.apt_cache: '{cache_dir(root)}' must be an absolute path of letters, "
                          "digits and . _ + - / (it is handed to mmdebstrap's hooks)")


@hookimpl
def debmock_mounts(root: RootServices, purpose: str) -> list[Mount]:
    if purpose != "apt":
        return []
    return [Bind(str(_prepare(root)), ARCHIVES, readonly=False)]


def _lock(root: RootServices) -> None:
    """Take the cache's lock; re-entrant (the bootstrap holds it while init's apt runs)."""
    held: list[int] = root.plugin_state.setdefault(PLUGIN_NAME, [])
    if held:
        held.append(held[0])
        return
    path = _prepare(root) / ".deb-mock.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        root.console.info(f"waiting for the apt cache lock ({path.parent}: another root's apt runs)")
        started = time.monotonic()
        fcntl.flock(fd, fcntl.LOCK_EX)
        root.logs.write_root_log(f"deb-mock: waited {time.monotonic() - started:.1f}s for the apt cache lock")
    held.append(fd)


def _unlock(root: RootServices) -> None:
    held: list[int] = root.plugin_state.get(PLUGIN_NAME) or []
    if held:
        fd = held.pop()
        if not held:
            os.close(fd)


@hookimpl
def debmock_pre_apt(root: RootServices, argv: list[str]) -> None:
    _lock(root)


@hookimpl
def debmock_post_apt(root: RootServices, argv: list[str], returncode: int) -> None:
    _unlock(root)


@hookimpl
def debmock_bootstrap_args(root: RootServices) -> list[str]:
    """mmdebstrap works in the cache itself: bind-mounted on the target's archives.

    Nothing is copied in or out (sync-in/sync-out copied the whole cache, hundreds
    of MB once builds have filled it, twice per bootstrap). The mount lives in the
    run's private mount namespace, so it dies with the run; it is unmounted in a
    customize hook because mmdebstrap's cleanup deletes the .debs it finds there,
    and ``--skip=essential/unlink`` keeps mmdebstrap from deleting the essential ones.
    """
    directory = shlex.quote(str(_prepare(root)))
    _lock(root)  # released at debmock_root_initialized or debmock_unconfigure
    return [
        "--skip=essential/unlink",
        f'--setup-hook=mkdir -p "$1"{ARCHIVES}',
        f'--setup-hook=mount --bind {directory} "$1"{ARCHIVES}',
        f'--customize-hook=umount "$1"{ARCHIVES}',
    ]


@hookimpl
def debmock_root_initialized(root: RootServices, restored: bool) -> None:
    while root.plugin_state.get(PLUGIN_NAME):
        _unlock(root)


@hookimpl
def debmock_unconfigure(root: RootServices) -> None:
    while root.plugin_state.get(PLUGIN_NAME):
        _unlock(root)


@hookimpl
def debmock_scrub(root: RootServices, kinds: frozenset[str]) -> None:
    if not kinds & {"apt-cache", "cache", "all"}:
        return
    directory = cache_dir(root)
    if directory.is_dir():
        for path in directory.glob("*.deb"):
            path.unlink()
