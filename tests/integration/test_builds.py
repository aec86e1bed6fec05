"""Package rebuilds for real: Debian's own sources and the tests' own small packages."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from debian.deb822 import Changes

from tests.integration.conftest import DebMock
from tests.integration.debsrc import make_source

pytestmark = [pytest.mark.root, pytest.mark.network, pytest.mark.slow]
R = ("-r", "trixie-amd64")
#: the archive reachable here serves sid's hello 2.12.3-1 (trixie's sources answer 404), and
#: sid's Release is past its Valid-Until on this frozen archive
SID_SOURCES = ("--config-opts", "source_suites=[sid]",
               "--config-opts", "apt_options=[Acquire::Check-Valid-Until=false]")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sources")


def test_rebuild_hello_is_complete_and_reproducible(dm: DebMock, trixie: dict[str, object], tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    result = dm.json(*R, *SID_SOURCES, "--resultdir", str(first), "--rebuild", "hello/sid")
    assert result["exit_code"] == 0, result
    deb = first / "hello_2.12.3-1_amd64.deb"
    artifacts = {Path(a["path"]).name: a for a in result["artifacts"]}  # type: ignore[union-attr]
    assert set(artifacts) == {"hello_2.12.3-1_amd64.deb", "hello-dbgsym_2.12.3-1_amd64.deb",
                              "hello_2.12.3-1_amd64.changes", "hello_2.12.3-1_amd64.buildinfo"}
    assert artifacts[deb.name]["sha256"] == sha256(deb) and artifacts[deb.name]["size"] == deb.stat().st_size
    changes = Changes((first / "hello_2.12.3-1_amd64.changes").read_text())
    assert changes["Source"] == "hello" and changes["Version"] == "2.12.3-1"
    assert {f["name"] for f in changes["Files"]} >= {deb.name, "hello-dbgsym_2.12.3-1_amd64.deb"}
    buildinfo = (first / "hello_2.12.3-1_amd64.buildinfo").read_text()
    assert "Build-Path: /build/reproducible-path/hello-2.12.3" in buildinfo
    for log in ("build.log", "root.log", "state.log", "installed-pkgs.log", "result.json", "lintian.log"):
        assert (first / log).is_file(), log
    assert "dpkg-buildpackage" in (first / "build.log").read_text()
    assert "debhelper" in (first / "installed-pkgs.log").read_text()
    # the build root's packages for the engine driving deb-mock, as installed-pkgs.log lists them
    packages = {p["name"]: p for p in result["root_packages"]}  # type: ignore[union-attr]
    assert packages["debhelper"]["architecture"] == "all" and packages["libc6"]["architecture"] == "amd64"
    assert f"debhelper {packages['debhelper']['version']}" in (first / "installed-pkgs.log").read_text().splitlines()
    assert len(packages) == len((first / "installed-pkgs.log").read_text().splitlines())
    assert "lintian exit status" in (first / "lintian.log").read_text()
    assert {"build-deps", "unpack", "build", "results"} <= set(result["durations"])  # type: ignore[arg-type]
    # the root itself is untouched by a clean build
    assert dm.run(*R, "--chroot", "dpkg -s debhelper").returncode != 0
    assert "deb-mock: source tree " in (first / "root.log").read_text()  # kept (or reused: same files)
    again = dm.json(*R, *SID_SOURCES, "--resultdir", str(second), "--rebuild", "hello/sid")
    assert again["exit_code"] == 0
    for name in ("hello_2.12.3-1_amd64.deb", "hello-dbgsym_2.12.3-1_amd64.deb"):
        assert sha256(first / name) == sha256(second / name), f"{name} differs between two builds"
    # the second build copied the tree the first one unpacked and kept, as dpkg-source left it
    assert "reused: no dpkg-source -x" in (second / "root.log").read_text()
    trees = [p for p in (dm.basedir.parent / "cache" / "trixie-amd64" / "source-trees").iterdir() if p.is_dir()
             and (p / "hello-2.12.3/debian/changelog").is_file()]
    assert trees
    for tree in trees:
        assert (tree / "hello_2.12.3.orig.tar.gz").is_file() and not (tree / "hello-2.12.3/debian/files").exists()
        assert tree.stat().st_uid != 0 and (tree / "hello-2.12.3/configure").stat().st_uid != 0  # unprivileged


def test_build_runs_unprivileged_without_network(dm: DebMock, trixie: dict[str, object], sources: Path,
                                                 loopback_listener: tuple[int, list[bytes]], tmp_path: Path) -> None:
    port, accepted = loopback_listener
    build = "\n".join([
        '\techo "PROBE uid=$$(id -u) user=$$(id -un)"',
        "\techo \"PROBE ifaces=$$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | paste -sd,)\"",
        f'\t(exec 3<>/dev/tcp/127.0.0.1/{port} && echo ping >&3 && echo "PROBE connect=ok")'
        ' || echo "PROBE connect=refused"',
        '\techo "PROBE home=$$HOME pwd=$$(pwd) sde=$$SOURCE_DATE_EPOCH dbo=$$DEB_BUILD_OPTIONS"',
    ])
    dsc = make_source(sources, "dm-probe", build=build)
    out = tmp_path / "out"
    dm.ok(*R, "--resultdir", str(out), "--nocheck", "-j", "2", str(dsc))  # a bare .dsc means --rebuild
    log = (out / "build.log").read_text()
    assert "PROBE uid=1000 user=build" in log
    assert "PROBE ifaces=lo\n" in log
    assert "PROBE connect=refused" in log and accepted == []
    assert "home=/sbuild-nonexistent pwd=/build/reproducible-path/dm-probe-1.0" in log
    assert "sde=1793613600" in log  # the changelog's date
    options = log.split("dbo=")[-1].splitlines()[0]  # the last: make echoes the command first
    assert "nocheck" in options and "parallel=2" in options
    assert (out / "dm-probe_1.0_all.deb").is_file()


def test_failed_build_exits_10_and_keeps_the_logs(dm: DebMock, trixie: dict[str, object], sources: Path,
                                                  tmp_path: Path) -> None:
    dsc = make_source(sources, "dm-fails", build="\techo checking for a compiler > config.log\n"
                                                 "\techo 'BUILD GOES WRONG'; exit 3")
    out = tmp_path / "out"
    result = dm.run(*R, "--resultdir", str(out), "--rebuild", str(dsc))
    assert result.returncode == 10
    assert "BUILD GOES WRONG" in result.stderr and "Traceback" not in result.stderr
    assert "BUILD GOES WRONG" in (out / "build.log").read_text()
    scanned = out / "chroot_scan" / "build" / "reproducible-path" / "dm-fails-1.0" / "config.log"
    assert scanned.read_text() == "checking for a compiler\n"
    data = json.loads((out / "result.json").read_text())
    assert data["status"] == "failure" and data["exit_code"] == 10 and data["failure"] == "package"


def test_unsatisfiable_build_depends_exit_30(dm: DebMock, trixie: dict[str, object], sources: Path,
                                             tmp_path: Path) -> None:
    dsc = make_source(sources, "dm-unsat", build_depends="dm-no-such-package-xyz (>= 2)")
    result = dm.run(*R, "--resultdir", str(tmp_path), "--rebuild", str(dsc))
    assert result.returncode == 30
    assert "dm-no-such-package-xyz" in result.stderr


def test_bad_source_packages_exit_40(dm: DebMock, trixie: dict[str, object], tmp_path: Path) -> None:
    for damage in ("missing", "corrupted", "truncated"):
        top = tmp_path / damage
        top.mkdir()
        dsc = make_source(top, "dm-damaged")
        tarball = next(top.glob("dm-damaged_1.0.tar.*"))
        if damage == "missing":
            tarball.unlink()
        elif damage == "corrupted":
            data = bytearray(tarball.read_bytes())
            data[len(data) // 2] ^= 0xFF
            tarball.write_bytes(bytes(data))
        else:
            tarball.write_bytes(tarball.read_bytes()[:-10])
        result = dm.run(*R, "--resultdir", str(tmp_path / "out"), "--rebuild", str(dsc))
        assert result.returncode == 40, (damage, result.stderr)
        assert tarball.name in result.stderr and str(dsc) in result.stderr
        assert {"missing": "missing", "corrupted": "checksum", "truncated": "bytes"}[damage] in result.stderr


def test_chain_extra_package_and_postinstall(dm: DebMock, trixie: dict[str, object], sources: Path,
                                             tmp_path: Path) -> None:
    lib = make_source(sources, "dm-lib")
    app = make_source(sources, "dm-app", build_depends="dm-lib")
    alone = dm.run(*R, "--resultdir", str(tmp_path / "alone"), "--rebuild", str(app))
    assert alone.returncode == 30 and "dm-lib" in alone.stderr
    chain = dm.json(*R, "--resultdir", str(tmp_path / "chain"), "--chain", "--rebuild", str(lib), str(app))
    assert chain["exit_code"] == 0, chain
    assert (tmp_path / "chain" / "dm-app_1.0" / "dm-app_1.0_all.deb").is_file()
    assert "dm-lib" in (tmp_path / "chain" / "dm-app_1.0" / "installed-pkgs.log").read_text()
    extra = tmp_path / "chain" / "dm-lib_1.0" / "dm-lib_1.0_all.deb"
    dm.ok(*R, "--resultdir", str(tmp_path / "extra"), "--extra-package", str(extra), "--postinstall",
          "--rebuild", str(app))
    assert "install ok installed" in dm.ok(*R, "--chroot", "dpkg -s dm-app").stdout
    dm.ok(*R, "--remove", "dm-app")
    fails = make_source(sources, "dm-chain-fails", build="\texit 1")
    partial = dm.run(*R, "--resultdir", str(tmp_path / "partial"), "--chain", "-c", "--rebuild", str(fails), str(lib))
    assert partial.returncode == 4 and "dm-chain-fails" in partial.stderr
    assert (tmp_path / "partial" / "dm-lib_1.0" / "dm-lib_1.0_all.deb").is_file()


def test_buildsrc_from_an_unpacked_tree(dm: DebMock, trixie: dict[str, object], tmp_path: Path) -> None:
    make_source(tmp_path, "dm-tree", version="2.0")
    tree = tmp_path / "dm-tree-2.0"
    out = tmp_path / "out"
    result = dm.json(*R, "--resultdir", str(out), "--buildsrc", "--sources", str(tree))
    assert result["exit_code"] == 0, result
    names = {Path(a["path"]).name for a in result["artifacts"]}  # type: ignore[union-attr]
    assert {"dm-tree_2.0.dsc", "dm-tree_2.0_all.deb"} <= names
    assert any(n.startswith("dm-tree_2.0.tar.") for n in names)


def test_rebuild_real_bookworm_packages(dm: DebMock, tmp_path: Path) -> None:
    """tree (plain Makefile) and pv (autoconf configure, gettext) fetched from bookworm's archive."""
    B = ("-r", "bookworm-amd64")
    result = dm.json(*B, "--resultdir", str(tmp_path), "--rebuild", "tree", "pv")
    assert result["exit_code"] == 0, result
    for name in ("tree", "pv"):
        packages = list((tmp_path).glob(f"{name}_*/{name}_*_amd64.deb"))
        assert len(packages) == 1, list(tmp_path.rglob("*"))
        changes = next(packages[0].parent.glob("*.changes"))
        assert Changes(changes.read_text())["Source"] == name
        assert (packages[0].parent / "build.log").stat().st_size > 1000
    assert "configure" in next(tmp_path.glob("pv_*/build.log")).read_text()
    # a binNMU of the same source, as sbuild makes one (benchmarks/rebuild_hello.py --binnmu compares the bytes)
    nmu = tmp_path / "binnmu"
    result = dm.json(*B, "--resultdir", str(nmu), "--rebuild", "tree", "--make-binNMU", "Rebuild for the test",
                     "--binNMU", "1", "--binNMU-timestamp", "1764000000", "-m", "Deb Mock <dm@example.invalid>")
    assert result["exit_code"] == 0, result
    version = result["versions"][0]  # type: ignore[index]
    assert version["binary_version"] == version["source_version"] + "+b1" and version["binary_only"], version
    changes = Changes(next(nmu.glob("*.changes")).read_text())
    assert changes["Version"] == version["binary_version"] and changes["Binary-Only"] == "yes"
    assert changes["Date"] == "Mon, 24 Nov 2025 16:00:00 +0000" and changes["Architecture"] == "amd64"
    shutil.rmtree(tmp_path)
    dm.ok(*B, "--scrub=all")
