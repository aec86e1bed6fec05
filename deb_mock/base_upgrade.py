"""A current base: dist-upgraded before a clean build when its package lists hold newer packages.

Clean builds run over the base itself (with a build-deps layer keyed by the
base's content id), so a base that is never upgraded drifts from what the
archive's buildds install: for sid within days. sbuild upgrades its chroot
before every build (``$apt_distupgrade``); deb-mock does it once per fresh set
of package lists. The lists are refreshed in the base when stale
(:meth:`RootServices.refresh_lists_if_stale`); when a set of lists was not yet
looked at, a simulated dist-upgrade says whether anything is newer, and if so
the base is upgraded in place, under the root's lock, with nothing mounted on
it. Warm builds whose lists were already looked at cost nothing here.

The new content id is made from the old one and the changes, so every root
restored from the same root cache that upgrades to the same versions gets the
same id and shares build-deps layers with the others; layers of the old id
are no longer picked and expire as usual. The root cache is not rewritten.

The root's own state over the base is kept in step: an upper that holds its
own dpkg database (packages installed into the root by hand) would otherwise
name versions whose files are gone, so the root's current state is
dist-upgraded right after the base (its lists refreshed first: an upper may
hold older ones). Snapshots are frozen: a warning says that after a
``--rollback-to`` to one of them, ``--update`` brings the root in step.
"""

from __future__ import annotations

import hashlib
import time

from deb_mock import apt
from deb_mock.errors import DebMockError
from deb_mock.services import RootServices


def keep_base_current(services: RootServices, *, allowed: bool) -> list[str]:
    """Upgrade the base if its (fresh) lists hold newer packages; returns what changed (empty: nothing)."""
    config, store = services.config, services.store
    if not allowed:
        return []
    if config.offline:
        hours = (time.time() - store.lists_updated_at(including_upper=False)) / 3600
        if hours * 60 > config.apt_lists_max_age:
            services.console.warn(f"offline: the base is not upgraded (its package lists are {hours:.0f} h old)")
        return []
    services.refresh_lists_if_stale(in_base=True)
    stamp = store.lists_stamp()
    if store.base_info().get("upgrade_checked") == stamp:
        return []
    base_fs = services.base_as_root(services.paths.base)
    with services.logs.stage("base-upgrade"):
        plan = services.apt_run(apt.simulate(apt.upgrade_command()), "apt-plan-upgrade", root_fs=base_fs)
        changes = apt.planned_changes(plan)
        if changes:
            services.console.info(f"upgrading the base: {len(changes)} package(s) newer in the archive")
            services.apt_run(apt.upgrade_command(), "apt-dist-upgrade", root_fs=base_fs)
    if not changes:
        store.update_base_info(upgrade_checked=stamp)
        return []
    old_id = store.base_content_id()
    new_id = "upgraded-" + hashlib.sha256("\n".join([old_id, *changes]).encode()).hexdigest()
    store.update_base_info(upgrade_checked=stamp, content_id=new_id, upgraded=changes, upgraded_at=time.time(),
                           upgraded_from=old_id)
    services.logs.write_root_log("deb-mock: base upgraded (content id " + new_id + "):\n  " + "\n  ".join(changes))
    _bring_state_in_step(services)
    return changes


def _bring_state_in_step(services: RootServices) -> None:
    """After the base changed: upgrade the root's current state if it has its own dpkg database; warn for snapshots."""
    holders = services.store.package_state_above_base()
    snapshots = [name for name in holders if name != "upper"]
    if snapshots:
        services.console.warn(f"snapshot(s) {', '.join(snapshots)} predate the base's upgrade: after --rollback-to "
                              "one of them, --update brings the root in step")
    if "upper" not in holders:
        return
    root_fs = services.store.overlay()
    try:
        services.apt_run(apt.update_command(), "apt-update-root", root_fs=root_fs)
        services.apt_run(apt.upgrade_command(), "apt-dist-upgrade-root", root_fs=root_fs)
    except DebMockError as exc:  # builds do not use the root's own state: they go on
        services.console.warn(f"the root's own packages could not follow the base's upgrade ({exc.message}); "
                              "--update tries again")
