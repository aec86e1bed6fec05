"""Run the stage commands and pbuilder hooks of one build (see :mod:`deb_mock.stage_commands`).

In-root commands run through ``/bin/sh -c`` in the build's own sandbox, as
root (sbuild's rule; ``runuser -u build --`` runs one as the build user), with
the source files mounted where ``%d`` says and the hook directory read-only
under RUN_DIR. Commands before the build dependencies get apt's network,
later ones the build's. Host commands run as the user who runs deb-mock, in
the directory deb-mock was started in. Every command's status and duration
land in result.json (``stage_commands``); its output in build.log.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deb_mock import caller_commands, stage_commands
from deb_mock.build_commands import BUILD_TOP, SOURCE_MOUNT, BuildOptions
from deb_mock.errors import BuildError
from deb_mock.sandbox.spec import RUN_DIR, Bind, Mount, RootFs, with_run_dir
from deb_mock.services import Purpose, RootServices
from deb_mock.source import SourcePackage

#: where the hook directory appears inside the build's root
HOOK_MOUNT = f"{RUN_DIR}/hooks"
#: stages whose commands still get apt's network (they come before the build dependencies)
_SETUP_STAGES = ("chroot-setup-commands", "chroot-update-failed-commands", "build-deps-failed-commands")
#: pbuilder letters that run only after a successful build
_SUCCESS_ONLY = "BI"
_NO_SHELL = "echo 'deb-mock: no terminal, so no interactive shell (%SBUILD_SHELL)' >&2"


def _expand(command: str, values: dict[str, str]) -> tuple[str, bool]:
    """The command with its escapes replaced, and whether it starts an interactive shell (only with a terminal)."""
    shell = stage_commands.uses_shell(command) and sys.stdin.isatty()
    return stage_commands.expand(command, values if shell else {**values, "SBUILD_SHELL": _NO_SHELL}), shell


class StageRunner:
    """The stage commands of one build: the config's first, then the command line's, then hook scripts."""

    def __init__(self, services: RootServices, options: BuildOptions, source: SourcePackage,
                 build_log: Path) -> None:
        self.services = services
        self.source = source
        self.build_log = build_log
        hooks = services.config.hooks  # its commands were checked with the config
        for stage, command in options.stage_commands:
            stage_commands.check_stage(stage)
            stage_commands.check_command(command)
        cli = stage_commands.ordered(options.stage_commands)
        self.commands = {stage: [*hooks.commands(stage), *cli.get(stage, [])] for stage in stage_commands.STAGE_NAMES}
        self.hookdir = stage_commands.chosen_hookdir(options.hookdir, hooks.hookdir)
        self.network = bool(options.enable_network)
        #: the architecture built for (a cross build's --host)
        self.host_arch = options.host_arch or services.config.architecture

    @property
    def touches_setup(self) -> bool:
        """Whether anything runs in the root before its build dependencies (a build-deps layer must not keep it)."""
        return bool(self.commands["chroot-setup-commands"] or stage_commands.hook_scripts(self.hookdir, "H")
                    or stage_commands.hook_scripts(self.hookdir, "D"))

    def escapes(self, build_dir: str, changes: str | None, inside: bool) -> dict[str, str]:
        """The values of sbuild's escapes at this point (inside the root, or on the host)."""
        values = {"SBUILD_HOST_ARCH": self.host_arch, "SBUILD_BUILD_ARCH": self.services.config.architecture,
                  "SBUILD_BUILD_DIR": BUILD_TOP,
                  "SBUILD_PKGBUILD_DIR": build_dir, "SBUILD_SHELL": "/bin/bash -i",
                  "SBUILD_DSC": f"{SOURCE_MOUNT}/{self.source.dsc.name}" if inside else str(self.source.dsc)}
        if changes is not None:
            values["SBUILD_CHANGES"] = changes
        return values

    def environment(self, build_dir: str, operation: str) -> dict[str, str]:
        """pbuilder's hook variables (every stage command gets them too)."""
        config = self.services.config
        return {"BUILDDIR": BUILD_TOP, "PKGBUILDDIR": build_dir, "DISTRIBUTION": config.suite,
                "BUILD_ARCH": config.architecture, "HOST_ARCH": self.host_arch,
                "PBUILDER_OPERATION": operation, "DEB_MOCK_STAGE": operation}

    def in_root(self, stage: str, root_fs: RootFs, build_dir: str, *, success: bool = True,
                changes: str | None = None, failing: bool = False) -> None:
        """Run ``stage``'s commands, then its hook scripts, in the build's root.

        ``success`` False skips pbuilder's success-only hooks (B, I); ``failing``
        (the build already failed) records a failing command instead of raising.
        """
        letters = [letter for letter in stage_commands.BY_NAME[stage].letters
                   if success or letter not in _SUCCESS_ONLY]
        scripts = [script for letter in letters for script in stage_commands.hook_scripts(self.hookdir, letter)]
        if not self.commands[stage] and not scripts:
            return
        values = self.escapes(build_dir, changes, inside=True)
        env = {**self.environment(build_dir, stage), **values}
        mounts: list[Mount] = [Bind(str(f), f"{SOURCE_MOUNT}/{f.name}") for f in self.source.all_files]
        if self.hookdir is not None:
            mounts.append(Bind(str(self.hookdir), HOOK_MOUNT))
        mounts = with_run_dir(*mounts)
        services = self.services
        network = services.network_for(Purpose.APT) if stage in _SETUP_STAGES else (
            self.network and not services.config.offline)
        for command in self.commands[stage]:
            text, shell = _expand(command, values)
            self._in_root_one(stage, command, ["/bin/sh", "-c", text], root_fs, build_dir, env, mounts,
                              network, shell, failing)
        for script in scripts:
            self._in_root_one(stage, f"hook {script.name}", [f"{HOOK_MOUNT}/{script.name}"], root_fs, build_dir,
                              env, mounts, network, False, failing)

    def _in_root_one(self, stage: str, label: str, argv: list[str], root_fs: RootFs, build_dir: str,
                     env: dict[str, str], mounts: Sequence[Mount], network: bool, shell: bool,
                     failing: bool) -> None:
        services = self.services
        started = time.monotonic()
        cwd = build_dir if stage not in _SETUP_STAGES else "/"
        if shell:
            returncode = services.run_in_root(argv, purpose=Purpose.HOOK, interactive=True, root_fs=root_fs,
                                              cwd=cwd, env=env, mounts=mounts, network=network)
        else:
            with services.logs.sink(stage, log_path=self.build_log) as sink:
                sink.line_to_log_only(f"deb-mock: {stage}: {label}")
                returncode = services.run_in_root(argv, purpose=Purpose.HOOK, sink=sink, root_fs=root_fs,
                                                  cwd=cwd, env=env, mounts=mounts, network=network)
        self._record(stage, label, "root", returncode, started, failing)

    def on_host(self, stage: str, build_dir: str, changes: Path | None, failing: bool = False) -> None:
        """Run ``stage``'s commands on the host, as deb-mock's user, where deb-mock was started."""
        values = self.escapes(build_dir, str(changes) if changes else None, inside=False)
        env = {**os.environ, **self.environment(build_dir, stage), **values}
        for command in self.commands[stage]:
            text, shell = _expand(command, values)
            started = time.monotonic()
            with self.build_log.open("a", encoding="utf-8") as log:
                log.write(f"deb-mock: {stage}: {command}\n")
            returncode = caller_commands.run(["/bin/sh", "-c", text], env, os.getcwd(),
                                             None if shell else str(self.build_log), interactive=shell)
            self._record(stage, command, "host", returncode, started, failing)

    def _record(self, stage: str, command: str, where: str, returncode: int, started: float,
                failing: bool) -> None:
        entry: dict[str, Any] = {"stage": stage, "command": command, "where": where, "exit_code": returncode,
                                 "duration": round(time.monotonic() - started, 3), "package": self.source.name}
        self.services.result.extra.setdefault("stage_commands", []).append(entry)
        if returncode != 0 and failing:
            self.services.console.warn(f"the {stage} command {command!r} exited with status {returncode}")
        elif returncode != 0:
            raise BuildError(f"{self.source.name} {self.source.version}: the {stage} command {command!r} "
                             f"exited with status {returncode}", hint=f"its output is in {self.build_log}")


def run_hook_scripts(services: RootServices, hookdir: Path | None, letter: str, operation: str,
                     root_fs: RootFs | None = None) -> None:
    """pbuilder's hooks outside builds (E after --update, F before --chroot/--shell), as root in the root."""
    scripts = stage_commands.hook_scripts(hookdir, letter)
    if not scripts or hookdir is None:
        return
    config = services.config
    env = {"DISTRIBUTION": config.suite, "BUILD_ARCH": config.architecture, "HOST_ARCH": config.architecture,
           "PBUILDER_OPERATION": operation, "DEB_MOCK_STAGE": f"hook {letter}"}
    mounts = with_run_dir(Bind(str(hookdir), HOOK_MOUNT))
    for script in scripts:
        services.checked_run([f"{HOOK_MOUNT}/{script.name}"], f"hook-{letter}", root_fs=root_fs, env=env,
                             mounts=mounts, purpose=Purpose.HOOK, network=services.network_for(Purpose.APT))
