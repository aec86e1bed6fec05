"""What `bootc container lint` checks, over an image tree (container form with /etc, or commit form with /usr/etc).

An image that breaks bootc's conventions builds fine and fails later: on a
machine that boots another kernel than the one the initramfs was made for,
with configuration in /etc that a deployment never sees, or with files in
/var that the first deployment gets and no update ever changes (/var belongs
to the machine, not to the image). The checks read the tree with
:class:`InTree` (no link is followed) and never change it.

Errors make an image that cannot boot or update as meant; warnings, an
image that works but will surprise. ``--bootc-lint-strict`` counts both.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import tomllib
from pathlib import Path
from typing import Literal

from .intree import InTree

Severity = Literal["error", "warning"]
#: how many paths a finding names before it says "and N more"
SHOWN = 5
#: where tmpfiles.d snippets live in an image (usr/etc: the commit form's /etc)
TMPFILES_DIRS = ("usr/lib/tmpfiles.d", "etc/tmpfiles.d", "usr/etc/tmpfiles.d")
KARGS_DIR = "usr/lib/bootc/kargs.d"


@dataclasses.dataclass(frozen=True)
class Finding:
    """One thing the lint found: how bad, which check, what (with the paths)."""

    severity: Severity
    check: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.check}: {self.message}"


def lint_tree(tree: Path, arch: str) -> list[Finding]:
    """Every check over ``tree``; errors first."""
    with InTree(tree) as image:
        findings = [*_kernel(image), *_etc(image), *_boot(image), *_kargs(image, arch), *_var(image)]
    return sorted(findings, key=lambda f: f.severity != "error")


def _named(paths: list[str]) -> str:
    shown = ", ".join(f"/{p}" for p in paths[:SHOWN])
    return shown + (f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else "")


def _kernel(image: InTree) -> list[Finding]:
    """Exactly one kernel, as /usr/lib/modules/KVER/vmlinuz, with its initramfs.img beside it."""
    modules = "usr/lib/modules"
    kvers = [name for name in image.listdir(modules)
             if image.is_file(f"{modules}/{name}/vmlinuz") or image.is_file(f"{modules}/{name}/modules.dep")] \
        if image.is_dir(modules) else []
    if not kvers:
        return [Finding("error", "kernel", "no kernel: a bootc image has /usr/lib/modules/KVER/vmlinuz")]
    if len(kvers) > 1:
        return [Finding("error", "kernel", f"{len(kvers)} kernels ({', '.join(kvers)}): a bootc image has one")]
    found = []
    if not image.is_file(f"{modules}/{kvers[0]}/vmlinuz"):
        found.append(Finding("error", "kernel", f"/{modules}/{kvers[0]}/vmlinuz is missing"))
    if not image.is_file(f"{modules}/{kvers[0]}/initramfs.img"):
        found.append(Finding("warning", "initramfs", f"/{modules}/{kvers[0]}/initramfs.img is missing "
                                                     "(deb-mock makes one with the image's dracut)"))
    return found


def _etc(image: InTree) -> list[Finding]:
    """/etc (a container) or /usr/etc (a commit), never both: one of them would be lost."""
    if image.is_dir("usr/etc") and image.is_dir("etc") and image.listdir("usr/etc") and image.listdir("etc"):
        return [Finding("error", "etc", "both /etc and /usr/etc hold files: a deployment's /etc comes from one")]
    return []


def _boot(image: InTree) -> list[Finding]:
    """/boot is the machine's (ostree writes the deployments' kernels there): nothing of the image lands in it."""
    entries = image.listdir("boot") if image.is_dir("boot") else []
    if entries:
        return [Finding("warning", "boot", f"/boot is not empty ({_named([f'boot/{e}' for e in entries])}): "
                                           "a deployment never sees it")]
    return []


def _kargs(image: InTree, arch: str) -> list[Finding]:
    """Each kargs.d/*.toml is a table with ``kargs`` (strings) and maybe ``match-architectures`` (strings)."""
    if not image.is_dir(KARGS_DIR):
        return []
    found = []
    for name in image.listdir(KARGS_DIR):
        path = f"{KARGS_DIR}/{name}"
        if not name.endswith(".toml") or not image.is_file(path):
            continue
        try:
            data = tomllib.loads(image.read_text(path))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            found.append(Finding("error", "kargs", f"/{path}: not TOML ({exc})"))
            continue
        unknown = sorted(set(data) - {"kargs", "match-architectures"})
        for key in ("kargs", "match-architectures"):
            value = data.get(key, [] if key != "kargs" else None)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                found.append(Finding("error", "kargs", f"/{path}: '{key}' must be a list of strings"))
        if unknown:
            found.append(Finding("error", "kargs", f"/{path}: unknown key(s) {', '.join(unknown)}"))
    return found


def _var(image: InTree) -> list[Finding]:
    """Files in /var come with the first deployment only: no update changes them (tmpfiles.d makes them per machine)."""
    if not image.is_dir("var"):
        return []
    named, copied = _tmpfiles_paths(image)
    shadowed = []
    for dirpath, _dirs, files, dir_fd in image.walk_below("var"):
        for name in files:
            path = f"{dirpath}/{name}"
            if path not in named and not any(path.startswith(c + "/") for c in copied):
                mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
                if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
                    shadowed.append(path)
    if not shadowed:
        return []
    return [Finding("warning", "var", f"{len(shadowed)} file(s) in /var come only with the first deployment, "
                                      f"and no update changes them: {_named(sorted(shadowed))}")]


def _tmpfiles_paths(image: InTree) -> tuple[set[str], list[str]]:
    """Paths below /var that tmpfiles.d lines make (relative), and those whose whole tree they copy (``C``)."""
    named: set[str] = set()
    copied: list[str] = []
    for directory in TMPFILES_DIRS:
        for snippet in image.glob(f"{directory}/*.conf"):
            if not image.is_file(snippet):
                continue
            for line in image.read_text(snippet).splitlines():
                fields = line.split()
                if len(fields) >= 2 and not fields[0].startswith("#") and fields[1].startswith("/var/"):
                    named.add(fields[1].strip("/"))
                    if fields[0].startswith("C"):
                        copied.append(fields[1].strip("/"))
    return named, copied
