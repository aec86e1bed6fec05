"""lintian: check the built packages and write lintian.log, never failing the build.

lintian reads what the build produced, and a build is not trusted: it runs
in the sandbox, as the build user without network, from the root's own
release (so its tags are the target release's), never on the host. It is
installed into a layer over the root's base that is cached like build
dependencies, so only the first check pays for the installation; the result
directory is mounted read-only. Its exit status and tags are recorded, not
enforced.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from deb_mock import hookimpl
from deb_mock.errors import DebMockError, TimedOut
from deb_mock.fileio import write_atomic
from deb_mock.sandbox.runner import LineCollector
from deb_mock.sandbox.spec import RUN_DIR, Bind, with_run_dir
from deb_mock.services import Purpose

if TYPE_CHECKING:
    from deb_mock.builder import BuildContext
    from deb_mock.services import RootServices

PLUGIN_NAME = "lintian"
#: where the result directory appears (read-only) while lintian reads it
RESULTS = f"{RUN_DIR}/results"


@dataclasses.dataclass(frozen=True)
class Settings:
    """The ``plugins.lintian`` section."""

    enabled: bool = True
    #: extra lintian options, e.g. ["--info", "--display-level", ">=warning"]
    options: tuple[str, ...] = ()
    #: seconds before lintian is stopped
    timeout: int = 600


@hookimpl
def debmock_config_sections() -> dict[str, type]:
    return {PLUGIN_NAME: Settings}


def lintian_command(settings: Settings, changes: str) -> list[str]:
    """The lintian command line for one .changes file."""
    return ["lintian", *settings.options, changes]


@hookimpl
def debmock_post_build(root: RootServices, build: BuildContext) -> None:
    if not build.success:
        return
    settings: Settings = root.config.plugin(PLUGIN_NAME)
    log = build.resultdir / "lintian.log"
    changes = sorted(Path(a.path).name for a in build.artifacts
                     if a.path.endswith(".changes") and not a.path.endswith("_source.changes"))
    mounts = with_run_dir(Bind(str(build.resultdir.resolve()), RESULTS, readonly=True))
    lines: list[str] = []
    with root.logs.stage("lintian"):
        try:
            with root.tool_root("lintian", ["lintian"]) as tool_root:
                for name in changes:
                    argv = lintian_command(settings, f"{RESULTS}/{name}")
                    collector = LineCollector()
                    try:
                        status = root.run_in_root(argv, purpose=Purpose.QUERY, sink=collector, root_fs=tool_root,
                                                  unpriv=True, cwd="/", network=False, mounts=mounts,
                                                  timeout=settings.timeout)
                    except TimedOut:
                        lines.append(f"lintian {name}: stopped after {settings.timeout}s")
                        continue
                    lines += [f"$ {' '.join(argv)}", *collector.lines, f"lintian exit status: {status}"]
        except DebMockError as exc:  # lintian could not be installed (offline, say): recorded, not fatal
            lines.append(f"lintian could not run: {exc.message}")
            root.console.warn(f"lintian could not run; lintian.log says why: {exc.message.splitlines()[0]}")
    write_atomic(log, "\n".join(line for line in lines if line) + "\n")
