"""lintian: check the built packages and write lintian.log, never failing the build.

lintian runs on the host against the .changes in the result directory (as
sbuild's --run-lintian does when lintian is not wanted inside the chroot):
installing it into every clean build root would cost more than the build of
a small package. Its exit status and tags are recorded, not enforced.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from typing import TYPE_CHECKING

from deb_mock import hookimpl

if TYPE_CHECKING:
    from deb_mock.builder import BuildContext
    from deb_mock.services import RootServices

PLUGIN_NAME = "lintian"


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
    changes = [a.path for a in build.artifacts
               if a.path.endswith(".changes") and not a.path.endswith("_source.changes")]
    if shutil.which("lintian") is None:
        log.write_text("lintian is not installed on the host (apt-get install lintian); nothing was checked\n",
                       encoding="utf-8")
        root.console.warn("lintian is not installed on the host; lintian.log says so")
        return
    with root.logs.stage("lintian"):
        lines = []
        for path in changes:
            try:
                result = subprocess.run(lintian_command(settings, path), capture_output=True, text=True,
                                        timeout=settings.timeout, check=False)
                lines += [f"$ {' '.join(lintian_command(settings, path))}", result.stdout.rstrip(),
                          result.stderr.rstrip(), f"lintian exit status: {result.returncode}"]
            except subprocess.TimeoutExpired:
                lines.append(f"lintian {path}: stopped after {settings.timeout}s")
        log.write_text("\n".join(line for line in lines if line) + "\n", encoding="utf-8")
