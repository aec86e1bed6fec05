"""Debian source packages: read a .dsc with python-debian and check it before any work.

A build must not start (nor install anything) from a source package that is
incomplete or corrupted: every file the .dsc names must exist beside it with
the size and checksums it states. A bad .dsc is exit 40, naming the file and
the problem.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

from deb_mock.digests import file_digest
from deb_mock.errors import PackageError

#: checksum fields of a .dsc, strongest first, with their hashlib names
CHECKSUM_FIELDS = (("Checksums-Sha256", "sha256"), ("Checksums-Sha1", "sha1"), ("Files", "md5"))
RELATION_FIELDS = ("Build-Depends", "Build-Depends-Arch", "Build-Depends-Indep",
                   "Build-Conflicts", "Build-Conflicts-Arch", "Build-Conflicts-Indep")
_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


@dataclasses.dataclass(frozen=True)
class SourcePackage:
    """A checked source package on the host."""

    dsc: Path
    name: str
    version: str
    files: tuple[Path, ...]
    build_depends: str = ""
    #: every build relation field of the .dsc (Build-Depends, -Arch, -Indep, Build-Conflicts …), as written
    build_relations: tuple[tuple[str, str], ...] = ()

    @property
    def upstream_version(self) -> str:
        """Version without epoch and Debian revision (dpkg's upstream version)."""
        version = self.version.split(":", 1)[-1]
        return version.rsplit("-", 1)[0] if "-" in version else version

    @property
    def build_dir_name(self) -> str:
        """``<source>-<upstream version>``, the directory Debian's buildds unpack into."""
        return f"{self.name}-{self.upstream_version}"

    @property
    def all_files(self) -> tuple[Path, ...]:
        """The .dsc and every file it names."""
        return (self.dsc, *self.files)


def read_dsc(path: Path) -> SourcePackage:
    """Parse and verify ``path``; raise PackageError (exit 40) naming what is wrong."""
    if not path.is_file():
        raise PackageError(f"{path}: no such source package (.dsc) file")
    from debian.deb822 import Dsc  # imported where used: a warm run must start fast

    try:
        with path.open(encoding="utf-8") as handle:
            dsc = Dsc(handle)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PackageError(f"{path}: cannot read the .dsc: {exc}") from None
    name, version = dsc.get("Source"), dsc.get("Version")
    if not name or not version:
        missing = "Source" if not name else "Version"
        raise PackageError(f"{path}: not a source package description (no {missing} field)")
    if not _NAME.match(name):
        raise PackageError(f"{path}: '{name}' is not a valid source package name")
    field, algorithm = next(((f, a) for f, a in CHECKSUM_FIELDS if dsc.get(f)), (None, None))
    if field is None or algorithm is None:
        raise PackageError(f"{path}: the .dsc lists no files (no Files or Checksums field)")
    files = []
    for entry in dsc[field]:
        file_name = entry["name"]
        if "/" in file_name or file_name.startswith("."):
            raise PackageError(f"{path}: refusing file name '{file_name}' in {field}")
        expected_sum = entry.get(algorithm) or entry.get("md5sum")
        files.append(_check_file(path, path.parent / file_name, int(entry["size"]), algorithm, expected_sum))
    return SourcePackage(path.resolve(), name, version, tuple(files),
                         build_depends=str(dsc.get("Build-Depends", "")),
                         build_relations=tuple((f, str(dsc[f])) for f in RELATION_FIELDS if dsc.get(f)))


def _check_file(dsc: Path, file: Path, size: int, algorithm: str, expected: str) -> Path:
    if not file.is_file():
        raise PackageError(f"{dsc}: {file.name} is missing (expected beside the .dsc in {dsc.parent})")
    actual_size = file.stat().st_size
    if actual_size != size:
        raise PackageError(f"{dsc}: {file.name} has {actual_size} bytes, the .dsc says {size}: "
                           "the file is truncated or not the one the .dsc describes")
    if file_digest(file, algorithm) != expected:
        raise PackageError(f"{dsc}: {file.name} does not match its {algorithm} checksum: the file is corrupted")
    return file.resolve()


def verify_signature(source: SourcePackage, keyrings: tuple[str, ...]) -> str:
    """Check the .dsc's OpenPGP signature against ``keyrings`` with gpgv; return gpgv's report."""
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise PackageError("a keyring is configured to check .dsc signatures but gpgv is not installed",
                           hint="apt-get install gpgv")
    argv = [gpgv]
    for keyring in keyrings:
        argv += ["--keyring", keyring]
    argv.append(str(source.dsc))
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PackageError(f"{source.dsc}: bad or unknown signature:\n{result.stderr.strip()}")
    return result.stderr.strip()
