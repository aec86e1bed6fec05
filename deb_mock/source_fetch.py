"""Source packages fetched by name from the root's archive, as sbuild does for ``sbuild NAME``.

``apt-get source --download-only`` runs in a throw-away upper of the root
whose apt sources got ``deb-src`` twins of its ``deb`` entries, so the
archive and keys are exactly the root's. The download lands in a directory
deb-mock owns; the .dsc is then read and checked like a local one.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from deb_mock import apt
from deb_mock.build_commands import RESULT_MOUNT
from deb_mock.errors import PackageError, RootError, UsageError
from deb_mock.sandbox.spec import RUN_DIR, Bind, with_run_dir
from deb_mock.services import RootServices
from deb_mock.source import SourcePackage, read_dsc


def fetch_source(services: RootServices, spec: str, dest: Path) -> SourcePackage:
    """Download source package ``NAME`` or ``NAME=VERSION`` from the root's archive (as sbuild does)."""
    name, _, version = spec.split("/", 1)[0].partition("=")
    apt.check_package_names([spec])
    if services.config.offline:
        raise UsageError(f"cannot fetch source package '{spec}' offline: give a .dsc file")
    services.require_initialized()
    dest = dest / spec.replace("/", "_").replace(":", "_")
    if dest.exists():
        shutil.rmtree(dest)  # a clean download each time: no stale .dsc of an earlier try
    dest.mkdir(parents=True)
    root_fs = services.new_scratch("fetch")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src_list = Path(tmp) / "deb-mock-src.sources"
            src_list.write_text(deb_src_entries(services.paths.base, services.config.source_suites), encoding="utf-8")
            mounts = with_run_dir(Bind(str(src_list), f"{RUN_DIR}/src.sources"))
            services.checked_run(["cp", f"{RUN_DIR}/src.sources", "/etc/apt/sources.list.d/deb-mock-src.sources"],
                                 "fetch", root_fs=root_fs, mounts=mounts)
        services.apt_run(apt.update_command(), "apt-update", root_fs=root_fs)
        mounts = with_run_dir(Bind(str(dest.resolve()), RESULT_MOUNT, readonly=False))
        argv = ["/bin/sh", "-c", 'cd "$1" && shift && exec "$@"', "sh", RESULT_MOUNT,
                "apt-get", "--yes", "-o", "APT::Sandbox::User=root", "source", "--download-only", spec]
        services.apt_run(argv, "apt-source", root_fs=root_fs, mounts=mounts)
    finally:
        services.discard_scratch("fetch")
    candidates = sorted(dest.glob(f"{name}_{version.split(':', 1)[-1] if version else ''}*.dsc"))
    if not candidates:
        raise PackageError(f"apt-get source {spec} downloaded no .dsc into {dest}")
    return read_dsc(max(candidates, key=lambda p: p.stat().st_mtime))


def deb_src_entries(base: Path, extra_suites: Sequence[str] = ()) -> str:
    """deb822 ``deb-src`` stanzas mirroring the base's binary sources.

    ``extra_suites`` adds stanzas for more suites of the first archive (say sid
    sources for a trixie root), never naming an archive host of its own.
    """
    stanzas: list[str] = []
    one_line = base / "etc" / "apt" / "sources.list"
    if one_line.is_file() and not one_line.is_symlink():
        for line in one_line.read_text(encoding="utf-8").splitlines():
            words = line.split()
            if len(words) >= 4 and words[0] == "deb":
                options = []
                rest = words[1:]
                if rest[0].startswith("["):
                    while rest and not rest[0].endswith("]"):
                        options.append(rest.pop(0))
                    options.append(rest.pop(0))
                stanza = ["Types: deb-src", f"URIs: {rest[0]}", f"Suites: {rest[1]}",
                          f"Components: {' '.join(rest[2:])}"]
                stanza += [_option_field(o.strip("[]")) for o in options if o.strip("[]")]
                stanzas.append("\n".join(s for s in stanza if s))
    from debian.deb822 import Deb822  # imported where used: a warm run must start fast

    parts = base / "etc" / "apt" / "sources.list.d"
    if parts.is_dir() and not parts.is_symlink():
        for path in sorted(parts.glob("*.sources")):
            if path.is_symlink():
                continue
            for paragraph in Deb822.iter_paragraphs(path.read_text(encoding="utf-8").splitlines(keepends=True)):
                if "deb" in paragraph.get("Types", "").split():
                    paragraph["Types"] = "deb-src"
                    stanzas.append(paragraph.dump().strip())
    if not stanzas:
        raise RootError(f"{base}: no apt sources found to derive deb-src entries from")
    for suite in extra_suites:
        first = Deb822(stanzas[0].splitlines(keepends=False))
        first["Suites"] = suite
        stanzas.append(first.dump().strip())
    return "\n\n".join(stanzas) + "\n"


def _option_field(option: str) -> str:
    key, _, value = option.partition("=")
    fields = {"signed-by": "Signed-By", "trusted": "Trusted"}
    return f"{fields[key]}: {value}" if key in fields else ""
