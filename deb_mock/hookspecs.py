"""The plugin contract: every hook deb-mock calls, typed and documented.

Plugins implement these with ``@deb_mock.hookimpl`` (pluggy, project name
``deb_mock``). Hooks are always called with keyword arguments, so a spec may
gain parameters without breaking plugins that do not take them. A plugin that
implements a hook not listed here is refused when it is loaded
(``check_pending``), instead of being silently ignored.

``root`` is the run's :class:`deb_mock.services.RootServices`, not the Root
with its verbs: plugins read its facts (``config``, ``root_id``, ``paths``,
``store``, ``resultdir``, ``logs``, ``console``, ``result``, ``plugin_state``),
run commands with ``run_in_root``, ``checked_run``, ``apt_run`` and
``run_on_host``, and use ``require_initialized``, ``lists_are_stale``,
``refresh_lists_if_stale``, ``new_scratch`` and ``discard_scratch``; that
module's docstring is the list. They never call the CLI, the Root or each
other. ``purpose`` is a :class:`deb_mock.services.Purpose` (a ``str``: it
compares equal to ``"apt"``, ``"build"`` ...).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from deb_mock.builder import BuildContext
    from deb_mock.result import RunResult
    from deb_mock.sandbox.spec import Mount, Tmpfs
    from deb_mock.services import Purpose, RootServices

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
def debmock_configure(root: RootServices) -> None:
    """The configuration is frozen; nothing has touched the root yet."""


@hookspec(firstresult=True)
def debmock_root_restore(root: RootServices, target: Path) -> str | None:
    """Fill the empty directory ``target`` with a prepared base tree from a cache.

    Return an id of the restored content (the cache's digest; roots restored
    from the same cache share it, and caches derived from the base are keyed
    by it): no bootstrap and no preparation follow. None lets others try.
    """


@hookspec(firstresult=True)
def debmock_root_bootstrap(root: RootServices, target: Path) -> bool | None:
    """Create the base tree in ``target``; the mmdebstrap implementation runs last."""


@hookspec
def debmock_bootstrap_args(root: RootServices) -> list[str]:  # type: ignore[empty-body]
    """Return extra mmdebstrap options (proxies, caches, hooks)."""


@hookspec
def debmock_root_initialized(root: RootServices, restored: bool) -> None:
    """A new base was created (``restored``: it came from a cache)."""


@hookspec
def debmock_mounts(root: RootServices, purpose: Purpose) -> list[Mount]:  # type: ignore[empty-body]
    """Return mounts for a sandbox entry; ``purpose`` says what it is for (init, apt, chroot, shell, copy,
    build, query, helper)."""


@hookspec
def debmock_session_mounts(root: RootServices) -> list[Tmpfs]:  # type: ignore[empty-body]
    """Return tmpfs mounts (at host paths) that live for the whole run, seen by every sandbox entry.

    They are mounted in a namespace kept by a sleeping process and never
    appear on the host; the tmpfs plugin puts build uppers there (RAM).
    """


@hookspec
def debmock_pre_apt(root: RootServices, argv: list[str]) -> None:
    """apt is about to run in the root with ``argv``."""


@hookspec
def debmock_post_apt(root: RootServices, argv: list[str], returncode: int) -> None:
    """apt ran in the root and exited with ``returncode``."""


@hookspec
def debmock_enter(root: RootServices, purpose: Purpose) -> None:
    """A --chroot or --shell session is about to start."""


@hookspec
def debmock_exit(root: RootServices, purpose: Purpose, returncode: int) -> None:
    """A --chroot or --shell session ended with ``returncode``."""


@hookspec
def debmock_build_packages(root: RootServices) -> list[str]:  # type: ignore[empty-body]
    """Return packages to install besides the build dependencies (ccache, say)."""


@hookspec
def debmock_build_environment(root: RootServices, build: BuildContext) -> dict[str, str]:  # type: ignore[empty-body]
    """Return environment variables for dpkg-buildpackage (PATH is prepended to, not replaced)."""


@hookspec
def debmock_build_mounts(root: RootServices, build: BuildContext) -> list[Mount]:  # type: ignore[empty-body]
    """Return mounts for the dpkg-buildpackage step only (a compiler cache, say)."""


@hookspec
def debmock_pre_build(root: RootServices, build: BuildContext) -> None:
    """The source is unpacked and its build dependencies installed; dpkg-buildpackage is next.

    ``build.root_fs`` is the root the build runs in (run commands there with
    ``root.checked_run(..., root_fs=build.root_fs)``), ``build.build_dir`` the
    unpacked source inside it.
    """


@hookspec
def debmock_post_build(root: RootServices, build: BuildContext) -> None:
    """dpkg-buildpackage ended; ``build.success`` says how, ``build.artifacts`` lists the results.

    Called on failure too (before the build's root is discarded), so plugins
    can collect what explains a failure.
    """


@hookspec
def debmock_snapshot(root: RootServices, name: str) -> None:
    """Snapshot ``name`` was taken (the former upper is now a frozen layer)."""


@hookspec
def debmock_rollback(root: RootServices, name: str) -> None:
    """The root went back to snapshot ``name``."""


@hookspec
def debmock_scrub_kinds() -> list[str]:  # type: ignore[empty-body]
    """Return the ``--scrub`` kinds this plugin handles (its caches)."""


@hookspec
def debmock_scrub(root: RootServices, kinds: frozenset[str]) -> None:
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
def debmock_run_mode(root: RootServices, mode: str, args: argparse.Namespace) -> int | None:
    """Carry out plugin mode ``mode`` (a dest from debmock_modes); return its exit code.

    Called inside the root's session when the mode needs the root. None lets
    another plugin answer.
    """


@hookspec
def debmock_process_logs(root: RootServices, result: RunResult) -> None:
    """The run is over (whatever its outcome); post-process the result directory."""


@hookspec
def debmock_unconfigure(root: RootServices) -> None:
    """Last call of every run, even a failed one: release what debmock_configure took."""
