"""installed-pkgs.log read from the layers: what dpkg-query prints, and never past a link, FIFO or whiteout."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from deb_mock import dpkg_status


def test_the_lines_are_dpkg_querys_for_this_hosts_own_database() -> None:
    dpkg_query = shutil.which("dpkg-query")
    if dpkg_query is None or not Path("/var/lib/dpkg/status").is_file():
        pytest.fail("the unit tests run on Debian: dpkg-query and /var/lib/dpkg/status are needed")
    native = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout
    expected = subprocess.run([dpkg_query, "--show", "--showformat=${binary:Package} ${Version}\\n"],
                              capture_output=True, text=True, check=True).stdout.splitlines()
    status = Path("/var/lib/dpkg/status").read_bytes()
    packages = dpkg_status.installed_packages(status)
    assert dpkg_status.installed_lines(packages, native.strip()) == sorted(line for line in expected if line.strip())
    assert {"name": "dpkg", "architecture": native.strip()}.items() <= next(
        p for p in packages if p["name"] == "dpkg").items()


def _layer(top: Path, name: str, status: str | None = None) -> Path:
    layer = top / name
    (layer / "var/lib/dpkg").mkdir(parents=True)
    if status is not None:
        (layer / "var/lib/dpkg/status").write_text(status)
    return layer


STANZA = "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n"


def test_the_top_layer_with_the_file_wins_and_odd_paths_fall_back(tmp_path: Path) -> None:
    base = _layer(tmp_path, "base", STANZA)
    upper = tmp_path / "upper"
    upper.mkdir()
    assert dpkg_status.read_status([str(upper), str(base)]) == STANZA.encode()  # the upper does not touch it
    newer = _layer(tmp_path, "newer", STANZA.replace("Version: 1", "Version: 2"))
    assert b"Version: 2" in (dpkg_status.read_status([str(newer), str(base)]) or b"")
    linked = tmp_path / "linked"
    (linked / "var/lib").mkdir(parents=True)
    os.symlink(base / "var/lib/dpkg", linked / "var/lib/dpkg")
    assert dpkg_status.read_status([str(linked), str(base)]) is None  # a link: ask dpkg-query instead
    fifo = _layer(tmp_path, "fifo")
    os.mkfifo(fifo / "var/lib/dpkg/status")
    assert dpkg_status.read_status([str(fifo), str(base)]) is None  # never blocks on a FIFO


def test_multi_arch_same_and_foreign_packages_are_qualified() -> None:
    status = (STANZA + "\nPackage: b\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\n"
              "Version: 2\n\nPackage: c\nStatus: install ok installed\nArchitecture: arm64\nVersion: 3\n\n"
              "Package: d\nStatus: deinstall ok not-installed\nArchitecture: all\n\n"
              "Package: e\nStatus: deinstall ok config-files\nArchitecture: all\nVersion: 5\n"
              " continued: line\n").encode()
    assert dpkg_status.installed_lines(dpkg_status.installed_packages(status), "amd64") == [
        "a 1", "b:amd64 2", "c:arm64 3", "e 5"]


def test_an_opaque_directory_hides_the_layers_below(tmp_path: Path) -> None:
    base = _layer(tmp_path, "base", STANZA)
    hiding = _layer(tmp_path, "hiding")
    os.setxattr(hiding / "var/lib", "user.overlay.opaque", b"y")
    assert dpkg_status.read_status([str(hiding), str(base)]) is None  # not the base's file: dpkg-query decides
    assert dpkg_status.layer_touches_status(str(hiding)) and not dpkg_status.layer_touches_status(str(tmp_path))
    (hiding / "var/lib/dpkg/status").write_text("Package: z\n")
    assert dpkg_status.read_status([str(hiding), str(base)]) == b"Package: z\n"
