"""--scrub: which kinds exist, checking them, and deleting what each names.

The core deletes the root's tree, snapshots, the build-deps layers (with the
tool layers and the unpacked source trees) and the default result
directory; plugins delete their own caches through ``debmock_scrub``.
Scrubbing asks *every* plugin, enabled or not (a disabled plugin's cache
can still be scrubbed): the caller passes that plugin set's hook relay,
composed by the CLI or the API.
"""

from __future__ import annotations

from collections.abc import Sequence

import pluggy

from deb_mock.build_deps_cache import BuildDepsCache
from deb_mock.errors import UsageError
from deb_mock.layerstore import remove_tree
from deb_mock.services import RootServices

#: --scrub kinds handled by the core; plugins add theirs
CORE_SCRUB_KINDS = ("chroot", "snapshots", "build-deps-cache", "cache", "results", "all")


def scrub_kinds(all_plugins: pluggy.HookRelay) -> list[str]:
    """Every kind --scrub accepts: the core's, then the plugins'."""
    kinds = list(CORE_SCRUB_KINDS)
    for extra in all_plugins.debmock_scrub_kinds():
        kinds.extend(k for k in extra if k not in kinds)
    return kinds


def check_scrub_kinds(kinds: Sequence[str], known: Sequence[str]) -> None:
    """Refuse unknown --scrub kinds (exit 5) before anything is touched."""
    if not kinds:
        raise UsageError(f"--scrub needs a kind ({', '.join(known)})")
    for kind in kinds:
        if kind not in known:
            raise UsageError(f"--scrub: unknown kind '{kind}' (known: {', '.join(known)})")


def scrub(services: RootServices, kinds: Sequence[str], all_plugins: pluggy.HookRelay) -> list[str]:
    """Delete what ``kinds`` name; returns what was removed (for the report)."""
    check_scrub_kinds(kinds, scrub_kinds(all_plugins))
    selected = frozenset(kinds)
    paths, store = services.paths, services.store
    removed: list[str] = []
    if selected & {"chroot", "all"} and paths.top.exists():
        for entry in sorted(paths.top.iterdir()):
            if entry != services.resultdir and entry.name != "result":
                remove_tree(entry)
        removed.append(str(paths.top))
    if "snapshots" in selected and not selected & {"chroot", "all"} and store.is_initialized():
        store.drop_all_snapshots()
        removed.append(str(paths.layers))
    if selected & {"build-deps-cache", "cache", "all"}:
        removed += _scrub_build_deps(services)
    default_results = paths.default_resultdir
    if selected & {"results", "all"} and default_results.exists():
        remove_tree(default_results)  # never a --resultdir of the user's: it may hold anything
        removed.append(str(default_results))
    if "all" in selected and paths.top.exists() and not any(paths.top.iterdir()):
        paths.top.rmdir()
    all_plugins.debmock_scrub(root=services, kinds=selected)
    return removed


def _scrub_build_deps(services: RootServices) -> list[str]:
    """The build-deps layers, the tool layers (lintian's) and the unpacked source trees of the config."""
    from deb_mock.source_trees import KIND as SOURCE_TREES  # its build commands are no start-up's business

    removed: list[str] = []
    for kind in ("build-deps", "tool-layers", SOURCE_TREES):
        deps_cache = BuildDepsCache.for_config(services.config, kind)
        report = deps_cache.scrub()
        if report.in_use:
            services.console.warn(f"{report.in_use} {kind} layer(s) in use by running builds: no longer reused, "
                                  "deleted once those builds end (by the next build that saves a layer or the "
                                  "next scrub)")
        if report.removed:
            removed.append(str(deps_cache.directory))
    return removed
