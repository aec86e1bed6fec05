"""The plugin contract: every hook deb-mock calls, typed and documented.

Plugins implement these with ``@deb_mock.hookimpl`` (pluggy, project name
``deb_mock``). Hooks are always called with keyword arguments, so a spec may
gain parameters without breaking plugins that do not take them. A plugin that
implements a hook not listed here is refused when it is loaded
(``check_pending``), instead of being silently ignored.

``root`` is the :class:`deb_mock.root.Root` of the run: plugins read
``root.config``, ``root.paths``, ``root.resultdir`` and ``root.logs`` and may run
commands with ``root.run_in_root``; they never call the CLI or each other.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from deb_mock.builder import BuildContext
    from deb_mock.result import RunResult
    from deb_mock.root import Root
    from deb_mock.sandbox.spec import Mount, Tmpfs

PROJECT = "deb_mock"
hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec
def debmock_addoption(parser: argparse.ArgumentParser) -> None:
    """Add command-line options while the CLI parser is built."""


@hookspec
def debmock_config_sections() -> dict[str, type]:  # type: ignore[empty-body]
    """Return ``{plugin_name: SettingsDataclass}``: the plugin's config section.

    The dataclass must be frozen and have an ``enabled: bool`` field; its
    fields are the keys users may write under ``plugins: {plugin_name: ...}``.
    Called before the configuration is validated.
    """


@hookspec
def debmock_configure(root: Root) -> None:
    """The configuration is frozen; nothing has touched the root yet."""


@hookspec(firstresult=True)
def debmock_root_restore(root: Root, target: Path) -> str | None:
    """Fill the empty directory ``target`` with a prepared base tree from a cache.

    Return an id of the restored content (the cache's digest; roots restored
    from the same cache share it, and caches derived from the base are keyed
    by it): no bootstrap and no preparation follow. None lets others try.
    """


@hookspec(firstresult=True)
def debmock_root_bootstrap(root: Root, target: Path) -> bool | None:
    """Create the base tree in ``target``; the mmdebstrap implementation runs last."""


@hookspec
def debmock_bootstrap_args(root: Root) -> list[str]:  # type: ignore[empty-body]
    """Return extra mmdebstrap options (proxies, caches, hooks)."""


@hookspec
def debmock_root_initialized(root: Root, restored: bool) -> None:
    """A new base was created (``restored``: it came from a cache)."""


@hookspec
def debmock_mounts(root: Root, purpose: str) -> list[Mount]:  # type: ignore[empty-body]
    """Return mounts for a sandbox entry; ``purpose`` is chroot, shell, apt, init, copy."""


@hookspec
def debmock_session_mounts(root: Root) -> list[Tmpfs]:  # type: ignore[empty-body]
    """Return tmpfs mounts (at host paths) that live for the whole run, seen by every sandbox entry.

    They are mounted in a namespace kept by a sleeping process and never
    appear on the host; the tmpfs plugin puts build uppers there (RAM).
    """


@hookspec
def debmock_pre_apt(root: Root, argv: list[str]) -> None:
    """apt is about to run in the root with ``argv``."""


@hookspec
def debmock_post_apt(root: Root, argv: list[str], returncode: int) -> None:
    """apt ran in the root and exited with ``returncode``."""


@hookspec
def debmock_enter(root: Root, purpose: str) -> None:
    """A --chroot or --shell session is about to start."""


@hookspec
def debmock_exit(root: Root, purpose: str, returncode: int) -> None:
    """A --chroot or --shell session ended with ``returncode``."""


@hookspec
def debmock_build_packages(root: Root) -> list[str]:  # type: ignore[empty-body]
    """Return packages to install besides the build dependencies (ccache, say)."""


@hookspec
def debmock_build_environment(root: Root, build: BuildContext) -> dict[str, str]:  # type: ignore[empty-body]
    """Return environment variables for dpkg-buildpackage (PATH is prepended to, not replaced)."""


@hookspec
def debmock_build_mounts(root: Root, build: BuildContext) -> list[Mount]:  # type: ignore[empty-body]
    """Return mounts for the dpkg-buildpackage step only (a compiler cache, say)."""


@hookspec
def debmock_pre_build(root: Root, build: BuildContext) -> None:
    """The source is unpacked and its build dependencies installed; dpkg-buildpackage is next.

    ``build.root_fs`` is the root the build runs in (run commands there with
    ``root.run_in_root(..., root_fs=build.root_fs)``), ``build.build_dir`` the
    unpacked source inside it.
    """


@hookspec
def debmock_post_build(root: Root, build: BuildContext) -> None:
    """dpkg-buildpackage ended; ``build.success`` says how, ``build.artifacts`` lists the results.

    Called on failure too (before the build's root is discarded), so plugins
    can collect what explains a failure.
    """


@hookspec
def debmock_snapshot(root: Root, name: str) -> None:
    """Snapshot ``name`` was taken (the former upper is now a frozen layer)."""


@hookspec
def debmock_rollback(root: Root, name: str) -> None:
    """The root went back to snapshot ``name``."""


@hookspec
def debmock_scrub_kinds() -> list[str]:  # type: ignore[empty-body]
    """Return the ``--scrub`` kinds this plugin handles (its caches)."""


@hookspec
def debmock_scrub(root: Root, kinds: frozenset[str]) -> None:
    """Delete what this plugin owns for the given ``--scrub`` kinds ("all" included)."""


@hookspec
def debmock_modes() -> dict[str, bool]:  # type: ignore[empty-body]
    """Return ``{dest: needs_root}`` for the modes this plugin's options select.

    ``dest`` is the argparse destination of an option the plugin added in
    debmock_addoption (``bootc_image`` for ``--bootc-image``). ``needs_root``
    True runs the mode in a root session (lock, result directory, result.json);
    False runs it without touching a root (booting a finished image, say).
    """


@hookspec(firstresult=True)
def debmock_run_mode(root: Root, mode: str, args: argparse.Namespace) -> int | None:
    """Carry out plugin mode ``mode`` (a dest from debmock_modes); return its exit code.

    Called inside the root's session when the mode needs the root. None lets
    another plugin answer.
    """


@hookspec
def debmock_process_logs(root: Root, result: RunResult) -> None:
    """The run is over (whatever its outcome); post-process the result directory."""


@hookspec
def debmock_unconfigure(root: Root) -> None:
    """Last call of every run, even a failed one: release what debmock_configure took."""
