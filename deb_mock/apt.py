"""apt command lines for a root, and the part of apt's output a user needs.

Pure functions: the Root runs them in the sandbox; tests compare the lists.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from deb_mock.errors import UsageError

#: environment for every apt run: no questions, no pager
APT_ENV = {
    "DEBIAN_FRONTEND": "noninteractive",
    "DEBCONF_NONINTERACTIVE_SEEN": "true",
    "APT_LISTCHANGES_FRONTEND": "none",
}
_BASE = ["apt-get", "--yes", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]*(:[a-z0-9-]+)?([=/][A-Za-z0-9.+~:_-]+)?[+-]?$")


def check_package_names(names: Sequence[str]) -> None:
    """Refuse anything that is not a package name (apt would read ``-x`` as an option)."""
    if not names:
        raise UsageError("no package names given")
    for name in names:
        if not _PACKAGE.match(name):
            raise UsageError(f"'{name}' is not a valid Debian package name")


def update_command(strict: bool = False) -> list[str]:
    """Refresh the package lists; ``strict``: a source that cannot be fetched is an error, not a warning."""
    return [*_BASE, *(["--error-on=any"] if strict else []), "update"]


def install_command(packages: Sequence[str]) -> list[str]:
    """Install ``packages`` (names, ``name=version`` or ``name/suite``)."""
    return [*_BASE, "install", "--no-install-recommends", "--", *packages]


def satisfy_command(relations: Sequence[str]) -> list[str]:
    """Install what satisfies dependency relations (``a (>= 1) | b``), as autopkgtest does for its tests."""
    return [*_BASE, "satisfy", "--no-install-recommends", "--", ", ".join(relations)]


def base_options() -> list[str]:
    """The options of every apt-get run here (no questions, keep existing conffiles), for scripts."""
    return _BASE[1:]


def pm_command(arguments: Sequence[str]) -> list[str]:
    """apt-get with a user's own arguments (``--pm-cmd``), answering yes: nobody can answer in the root."""
    return [*_BASE, *arguments]


def remove_command(packages: Sequence[str]) -> list[str]:
    """Remove ``packages`` and what was installed only for them."""
    return [*_BASE, "remove", "--autoremove", "--", *packages]


def upgrade_command(packages: Sequence[str] = ()) -> list[str]:
    """Upgrade everything (``dist-upgrade``, as sbuild does), or only ``packages``."""
    if packages:
        return [*_BASE, "install", "--only-upgrade", "--no-install-recommends", "--", *packages]
    return [*_BASE, "dist-upgrade"]


def simulate(argv: Sequence[str]) -> list[str]:
    """The same apt-get command, only simulated (-s): what it would install, nothing done."""
    at = list(argv).index("apt-get") + 1
    return [*argv[:at], "--simulate", *argv[at:]]


def planned_installs(lines: Sequence[str]) -> list[str]:
    """``name version`` of every package a simulated run would install ("Inst" lines), sorted."""
    planned = set()
    for line in lines:
        if line.startswith("Inst "):
            words = line.split()
            version = next((w.lstrip("(") for w in words[2:] if w.startswith("(")), "")
            planned.add(f"{words[1]} {version}")
    return sorted(planned)


def planned_changes(lines: Sequence[str]) -> list[str]:
    """What a simulated upgrade would do, one line per package, sorted.

    ``name OLD -> NEW`` for an upgrade ("Inst name [old] (new ...)"),
    ``name (new) NEW`` for a package it adds, ``name removed`` for one it
    removes ("Remv"): the record a build log shows and a content id is made from.
    """
    changes = set()
    for line in lines:
        words = line.split()
        if len(words) < 2:
            continue
        if words[0] == "Inst":
            new = next((w.lstrip("(") for w in words[2:] if w.startswith("(")), "")
            old = words[2][1:-1] if len(words) > 2 and words[2].startswith("[") else ""
            changes.add(f"{words[1]} {old} -> {new}" if old else f"{words[1]} (new) {new}")
        elif words[0] == "Remv":
            changes.add(f"{words[1]} removed")
    return sorted(changes)


def installed_packages_command() -> list[str]:
    """List installed packages for installed-pkgs.log (the first two fields) and result.json (all three)."""
    return ["dpkg-query", "--show", "--showformat=${binary:Package} ${Version} ${Architecture}\\n"]


def explain_failure(lines: Sequence[str]) -> str:
    """apt's own explanation of a failure, cut to the lines that matter."""
    keep: list[str] = []
    in_unmet = False
    for line in lines:
        if "unmet dependencies" in line or "could not be installed" in line:
            in_unmet = True
        if line.startswith(("E:", "W: Failed")) or (in_unmet and line.startswith(" ")):
            keep.append(line.strip())
        elif in_unmet and line and not line.startswith(" ") and "unmet" not in line:
            in_unmet = False
    return "\n".join(dict.fromkeys(keep)) or "\n".join(lines[-5:])


def with_options(argv: Sequence[str], options: Sequence[str]) -> list[str]:
    """``argv`` with ``-o OPTION`` for each of ``options`` right after ``apt-get`` (unchanged without one)."""
    if not options or "apt-get" not in argv:
        return list(argv)
    at = list(argv).index("apt-get") + 1
    return [*argv[:at], *(x for o in options for x in ("-o", o)), *argv[at:]]


def describe(argv: Sequence[str]) -> str:
    """The words of an apt command a user recognises (``apt-get install hello``), without its options."""
    if len(argv) > 3 and argv[0] in ("/bin/sh", "sh") and argv[1] == "-c":
        return argv[3]  # a script: its $0 names it
    start = list(argv).index("apt-get") if "apt-get" in argv else 0
    return " ".join(a for a in argv[start:] if not a.startswith("-") and "::" not in a)
