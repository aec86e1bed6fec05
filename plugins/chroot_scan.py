"""chroot_scan: copy files that explain a build (core dumps, config.log) into the results.

The build's root is thrown away after a clean build, so whatever explains a
failure must be collected before: this plugin runs at debmock_post_build, in
the build's own root, and copies matching files into
``<resultdir>/chroot_scan/`` keeping their paths. By default only for failed
builds, as mock's chroot_scan does.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from deb_mock import hookimpl
from deb_mock.sandbox.spec import RUN_DIR, with_run_dir

if TYPE_CHECKING:
    from deb_mock.builder import BuildContext
    from deb_mock.services import RootServices

PLUGIN_NAME = "chroot_scan"
SCAN_OUT = f"{RUN_DIR}/scan"


@dataclasses.dataclass(frozen=True)
class Settings:
    """The ``plugins.chroot_scan`` section."""

    enabled: bool = True
    #: file name patterns (find -name syntax)
    patterns: tuple[str, ...] = ("core", "core.*", "*.core", "config.log", "CMakeError.log", "meson-log.txt")
    #: directories of the build root searched
    directories: tuple[str, ...] = ("/build",)
    #: only collect after a failed build
    only_failed: bool = True


@hookimpl
def debmock_config_sections() -> dict[str, type]:
    return {PLUGIN_NAME: Settings}


def scan_command(settings: Settings) -> list[str]:
    """find the matching files and copy them (with their paths) into SCAN_OUT."""
    names: list[str] = []
    for pattern in settings.patterns:
        names += ["-o", "-name", pattern] if names else ["-name", pattern]
    script = (
        'set -e; out=$1; shift; n=$1; shift; dirs=""; while [ "$n" -gt 0 ]; do dirs="$dirs $1"; shift; n=$((n-1)); '
        'done; find $dirs -xdev -type f \\( "$@" \\) -print0 2>/dev/null | '
        'while IFS= read -r -d "" f; do cp --parents --no-preserve=ownership -- "$f" "$out/"; echo "$f"; done'
    )
    return ["/bin/bash", "-c", script, "scan", SCAN_OUT, str(len(settings.directories)),
            *settings.directories, *names]


@hookimpl
def debmock_post_build(root: RootServices, build: BuildContext) -> None:
    settings: Settings = root.config.plugin(PLUGIN_NAME)
    if settings.only_failed and build.success:
        return
    target = build.resultdir / "chroot_scan"
    with root.outbox(target, SCAN_OUT) as outbox:  # what a failed build left is untrusted: no privileges
        found = root.checked_run(scan_command(settings), "chroot-scan", root_fs=build.root_fs,
                                 mounts=with_run_dir(outbox), network=False)
    if not [line for line in found if line.strip()] and target.is_dir() and not any(target.iterdir()):
        target.rmdir()
