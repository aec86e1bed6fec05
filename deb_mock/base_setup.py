"""Making a new base: restored from a cache by a plugin, or bootstrapped with mmdebstrap and prepared.

Root.init decides *whether* a base is needed and records it; this module
fills the empty directory it is given. Everything runs through the root's
services: mmdebstrap as a host tool in new namespaces, the preparation
inside the new tree.
"""

from __future__ import annotations

from pathlib import Path

from deb_mock import apt, bootstrap
from deb_mock.errors import BootstrapError
from deb_mock.services import Purpose, RootServices


def fill_base(services: RootServices, target: Path) -> str | None:
    """Fill the empty ``target`` with a base; returns the restored content id, or None if bootstrapped."""
    with services.logs.stage("restore"):
        content_id: str | None = services.hook.debmock_root_restore(root=services, target=target)
    if content_id is not None:
        services.console.info(f"restored {services.root_id} from the root cache (no bootstrap)")
        return content_id
    services.logs.durations.pop("restore", None)
    with services.logs.stage("bootstrap"):
        if not services.hook.debmock_root_bootstrap(root=services, target=target):
            run_mmdebstrap(services, target)
    with services.logs.stage("prepare"):
        prepare_base(services, target)
    return None


def run_mmdebstrap(services: RootServices, target: Path) -> None:
    """Bootstrap ``target`` with mmdebstrap (plugins add options: caches, proxies); exit 50 on failure."""
    config = services.config
    extra = [arg for args in services.hook.debmock_bootstrap_args(root=services) for arg in args]
    extra += bootstrap.unsafe_io_args(config)
    argv = bootstrap.mmdebstrap_command(config, target, extra)
    services.console.info(f"bootstrapping {config.suite}/{config.architecture} ({config.variant}) with mmdebstrap")
    with services.logs.sink("bootstrap") as sink:
        returncode = services.run_on_host(argv, sink, network=not config.offline)
    if returncode != 0:
        tail = "\n".join(line for line in sink.tail[-15:] if line.strip())
        raise BootstrapError(f"mmdebstrap failed with exit code {returncode}:\n{tail}",
                             hint=f"the whole output is in {services.logs.root_log}")


def prepare_base(services: RootServices, tree: Path) -> None:
    """Sources, apt settings, the build user and fresh package lists in a new base."""
    config = services.config
    bootstrap.configure_sources(tree, config)
    root_fs = services.base_as_root(tree)
    user, uid = config.build_user, str(config.build_uid)
    for argv in (
        ["groupadd", "--gid", uid, user],
        ["useradd", "--uid", uid, "--gid", uid, "--create-home", "--shell", "/bin/bash", user],
        ["install", "-d", "-o", user, "-g", user, "-m", "0755", "/build"],
    ):
        services.checked_run(argv, "prepare", root_fs=root_fs, network=False, purpose=Purpose.INIT)
    # mmdebstrap keeps its lists (--skip=cleanup/apt/lists); only sources added here need new ones
    if not config.offline and (config.deb_src or config.extra_sources):
        services.apt_run(apt.update_command(), "apt-update", root_fs=root_fs)
