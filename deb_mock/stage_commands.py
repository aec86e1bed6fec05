"""Commands at fixed points of a build, as sbuild and pbuilder users write them.

sbuild's external commands (``--starting-build-commands`` and the rest) keep
their names, their order, their percent escapes and their user: those inside
the root run as root there, the pre/post-build ones on the host as the user
who runs deb-mock. A pbuilder hook directory works unchanged: its scripts are
picked by their first letter and run at the matching stage, after the
stage's commands. This module is the pure part (the table, the escapes, the
scripts of a hook directory); :mod:`deb_mock.stage_runner` runs them.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from deb_mock.errors import UsageError


@dataclasses.dataclass(frozen=True)
class Stage:
    """One point of a build at which commands run."""

    name: str
    #: "root": inside the build's sandbox, as root; "host": on the host, as deb-mock's user
    where: str
    #: pbuilder hook letters run at this stage (after the stage's own commands)
    letters: str = ""
    #: what the stage means, for the man page and --help
    when: str = ""


#: every stage in the order a build reaches them (sbuild's order)
STAGES: tuple[Stage, ...] = (
    Stage("pre-build-commands", "host", "", "before anything else, on the host"),
    Stage("chroot-setup-commands", "root", "HD", "in the fresh build root, before the build dependencies"),
    Stage("chroot-update-failed-commands", "root", "", "after refreshing the package lists failed"),
    Stage("build-deps-failed-commands", "root", "", "after installing the build dependencies failed"),
    Stage("starting-build-commands", "root", "A", "after the build dependencies and the unpack, before the build"),
    Stage("build-failed-commands", "root", "C", "after dpkg-buildpackage failed"),
    Stage("finished-build-commands", "root", "B", "after dpkg-buildpackage, failed or not (B hooks: on success)"),
    Stage("chroot-cleanup-commands", "root", "I", "after the results were copied out, before the root goes"),
    Stage("post-build-commands", "host", "", "after a successful build, on the host"),
    Stage("post-build-failed-commands", "host", "", "after a failed build, on the host"),
)
STAGE_NAMES: tuple[str, ...] = tuple(stage.name for stage in STAGES)
BY_NAME: dict[str, Stage] = {stage.name: stage for stage in STAGES}
#: pbuilder's hook letters and what deb-mock does with each (E, F: outside builds; G: not at all)
HOOK_LETTERS: dict[str, str] = {
    "A": "starting-build-commands", "B": "finished-build-commands (successful builds)",
    "C": "build-failed-commands", "D": "chroot-setup-commands (after H)", "H": "chroot-setup-commands (first)",
    "I": "chroot-cleanup-commands (successful builds, results copied)", "E": "after --update (in the root)",
    "F": "before --shell and --chroot", "G": "ignored (mmdebstrap makes the base)",
}

#: sbuild's one-letter escapes and their long names
SHORT_ESCAPES: dict[str, str] = {
    "a": "SBUILD_HOST_ARCH", "b": "SBUILD_BUILD_DIR", "c": "SBUILD_CHANGES", "d": "SBUILD_DSC",
    "e": "SBUILD_CHROOT_EXEC", "p": "SBUILD_PKGBUILD_DIR", "s": "SBUILD_SHELL",
}
LONG_ESCAPES: frozenset[str] = frozenset({*SHORT_ESCAPES.values(), "SBUILD_BUILD_ARCH"})
SHELL_ESCAPE = "SBUILD_SHELL"
_ESCAPE = re.compile(r"%(%|SBUILD_[A-Z_]+|.?)")


def _long_name(token: str, command: str) -> str:
    if token in LONG_ESCAPES:
        return token
    if token in SHORT_ESCAPES:
        return SHORT_ESCAPES[token]
    shown = f"%{token}" if token else "a lone % at the end"
    raise UsageError(f"stage command {command!r}: unknown escape {shown}",
                     hint="sbuild's escapes: %%, %a %b %c %d %e %p %s and %SBUILD_... (see deb-mock(1))")


def check_command(command: str) -> None:
    """Fail on an escape sbuild does not know (before any work is done)."""
    for match in _ESCAPE.finditer(command):
        if match.group(1) != "%":
            _long_name(match.group(1), command)


def expand(command: str, values: Mapping[str, str]) -> str:
    """Replace the escapes that have a value at this stage; leave the others as they are (as sbuild)."""
    def replace(match: re.Match[str]) -> str:
        token = match.group(1)
        if token == "%":
            return "%"
        name = _long_name(token, command)
        return values.get(name, match.group(0))

    return _ESCAPE.sub(replace, command)


def uses_shell(command: str) -> bool:
    """Whether ``command`` asks for an interactive shell (%s, %SBUILD_SHELL)."""
    return any(_long_name(m.group(1), command) == SHELL_ESCAPE
               for m in _ESCAPE.finditer(command) if m.group(1) != "%")


def check_stage(name: str) -> str:
    if name not in BY_NAME:
        raise UsageError(f"unknown stage {name!r}", hint="stages: " + ", ".join(STAGE_NAMES))
    return name


def check_hookdir(hookdir: Path) -> Path:
    """The hook directory, which must exist (pbuilder's --hookdir)."""
    if not hookdir.is_dir():
        raise UsageError(f"--hookdir {hookdir}: not a directory")
    return hookdir.resolve()


def chosen_hookdir(given: Path | None, configured: str | None) -> Path | None:
    """--hookdir, else the config's hooks.hookdir, checked; None when neither is set."""
    hookdir = given or (Path(configured) if configured else None)
    return check_hookdir(hookdir) if hookdir is not None else None


def hook_scripts(hookdir: Path | None, letter: str) -> list[Path]:
    """pbuilder's scripts for ``letter``: ``X<digit><digit>...``, executable, not ``~`` or ``.bak``, by name."""
    if hookdir is None:
        return []
    pattern = re.compile(rf"{re.escape(letter)}\d\d")
    found = []
    for entry in sorted(os.scandir(hookdir), key=lambda e: e.name):
        if not pattern.match(entry.name) or entry.name.endswith(("~", ".bak")):
            continue
        if entry.is_file(follow_symlinks=False) and os.access(entry.path, os.X_OK):
            found.append(Path(entry.path))
    return found


def ordered(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """(stage, command) pairs grouped by stage, each stage's commands in their given order."""
    grouped: dict[str, list[str]] = {}
    for stage, command in pairs:
        grouped.setdefault(check_stage(stage), []).append(command)
    return grouped
