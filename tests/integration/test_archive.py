"""Builds as the archive builds them: extra repositories for one build only.

The extra repository is served by the test itself on the host's loopback
(a directory indexed with dpkg-scanpackages behind a small HTTP server): no
traffic leaves the machine.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import DebMock
from tests.integration.debsrc import make_source

pytestmark = [pytest.mark.root, pytest.mark.network, pytest.mark.slow]
R = ("-r", "trixie-amd64")


class LocalRepository:
    """A flat apt repository in a directory, served on 127.0.0.1 by a small HTTP server."""

    def __init__(self, top: Path) -> None:
        self.top = top
        self.directory = top / "repo"
        self.directory.mkdir(parents=True)
        (self.directory / "Packages").write_text("")
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(self.directory))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.line = f"deb [trusted=yes] http://127.0.0.1:{self.server.server_address[1]}/ ./"

    def add(self, name: str, version: str, description: str, extra: str = "") -> None:
        """Build an empty ``name`` at ``version`` into the repository and index it anew."""
        tree = self.top / f"{name}-{version.replace(':', '_')}"
        (tree / "DEBIAN").mkdir(parents=True)
        (tree / "DEBIAN/control").write_text(f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
                                             f"Maintainer: deb-mock tests <tests@deb-mock.invalid>\n{extra}"
                                             f"Description: {description}\n")
        deb = self.directory / f"{name}_{version.split(':')[-1]}_all.deb"
        subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)], check=True,
                       capture_output=True)
        packages = subprocess.run(["dpkg-scanpackages", "--multiversion", "."], cwd=self.directory, check=True,
                                  capture_output=True).stdout
        (self.directory / "Packages").write_bytes(packages)

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[LocalRepository]:
    served = LocalRepository(tmp_path / "local-repository")
    yield served
    served.close()


@pytest.fixture
def local_repository(repository: LocalRepository) -> str:
    """A repository with dm-extra-dep 7.0 (which the archive lacks); its apt line."""
    repository.add("dm-extra-dep", "7.0", "a build dependency only the extra repository has")
    return repository.line


def _base_and_cache(dm: DebMock) -> tuple[str, list[tuple[str, float]]]:
    state = json.loads((dm.root_dir("trixie-amd64") / "state.json").read_text())
    cache = dm.basedir.parent / "cache" / "trixie-amd64" / "root_cache"
    files = sorted((p.name, p.stat().st_mtime) for p in cache.iterdir()) if cache.is_dir() else []
    return str(state["base"]["content_id"]), files


def test_an_extra_repository_serves_one_build_only(dm: DebMock, trixie: dict[str, object], tmp_path: Path,
                                                   local_repository: str) -> None:
    dsc = make_source(tmp_path, "dm-needs-extra", build_depends="dm-extra-dep (>= 7.0)")
    before = _base_and_cache(dm)
    without = dm.json(*R, "--resultdir", str(tmp_path / "without"), "--rebuild", str(dsc))
    assert without["exit_code"] == 30 and "dm-extra-dep" in str(without["error"]), without
    with_it = dm.json(*R, "--resultdir", str(tmp_path / "with"), "--rebuild", str(dsc),
                      "--extra-repository", local_repository)
    assert with_it["exit_code"] == 0, with_it
    recorded = with_it["versions"][0]  # type: ignore[index]
    assert recorded["extra_repositories"] == [local_repository] and recorded["host_architecture"] == "amd64"
    assert with_it["signed"] is False
    installed = (tmp_path / "with/installed-pkgs.log").read_text()
    assert "dm-extra-dep 7.0" in installed or "dm-extra-dep=7.0" in installed, installed
    assert _base_and_cache(dm) == before  # the base and the root cache never saw the repository
    again = dm.json(*R, "--resultdir", str(tmp_path / "again"), "--rebuild", str(dsc))
    assert again["exit_code"] == 30, again  # and the next build without it does not see it either
    unreachable = dm.json(*R, "--resultdir", str(tmp_path / "gone"), "--rebuild", str(dsc),
                          "--extra-repository", "deb [trusted=yes] http://127.0.0.1:9/ ./")
    assert unreachable["exit_code"] == 30 and "127.0.0.1:9" in str(unreachable["error"]), unreachable


def test_the_first_alternative_is_what_buildds_install(dm: DebMock, trixie: dict[str, object], tmp_path: Path) -> None:
    dsc = make_source(tmp_path, "dm-alternatives", build_depends="no-such-package | make")
    first = dm.json(*R, "--resultdir", str(tmp_path / "first"), "--rebuild", str(dsc))
    assert first["exit_code"] == 30 and "no-such-package" in str(first["error"]), first
    chosen = dm.json(*R, "--resultdir", str(tmp_path / "chosen"), "--rebuild", str(dsc), "--resolve-alternatives")
    assert chosen["exit_code"] == 0, chosen


def test_aptitude_resolves_alternatives_and_explains_what_it_cannot(dm: DebMock, trixie: dict[str, object],
                                                                     tmp_path: Path) -> None:
    """--build-dep-resolver aptitude: aptitude in the build's layer searches the alternatives (as in sbuild)."""
    dsc = make_source(tmp_path, "dm-aptitude", build_depends="no-such-package | make, libc6-dev [amd64] <!nocheck>")
    built = dm.json(*R, "--resultdir", str(tmp_path / "built"), "--rebuild", str(dsc),
                    "--build-dep-resolver", "aptitude")
    assert built["exit_code"] == 0, built
    installed = (tmp_path / "built/installed-pkgs.log").read_text()
    for package in ("aptitude ", "deb-mock-build-deps ", "make ", "libc6-dev:amd64 "):
        assert f"\n{package}" in installed, (package, installed)
    assert "deb-mock-build-deps" not in (dm.root_dir("trixie-amd64") / "base/var/lib/dpkg/status").read_text()
    impossible = make_source(tmp_path, "dm-aptitude-no", build_depends="no-such-package (>= 2)")
    failed = dm.json(*R, "--resultdir", str(tmp_path / "failed"), "--rebuild", str(impossible),
                     "--build-dep-resolver", "aptitude")
    assert failed["exit_code"] == 30, failed
    assert "no-such-package" in str(failed["error"]) and "aptitude install" in str(failed["error"]), failed
    cross = dm.json(*R, "--rebuild", str(impossible), "--build-dep-resolver", "aptitude", "--host", "arm64")
    assert cross["exit_code"] == 5 and "--build-dep-resolver aptitude" in str(cross["error"]), cross


def test_the_base_is_upgraded_when_the_archive_has_newer_packages(dm: DebMock, tmp_path: Path,
                                                                  repository: LocalRepository) -> None:
    """A package of the base gets a newer version in a repository of the root: the next clean build upgrades
    the base once (new content id), --no-apt-upgrade builds on it as it is, the root cache is not rewritten."""
    config = tmp_path / "upgrading.yaml"
    config.write_text(f"templates: [trixie-amd64]\nname: dm-upgrading\napt_lists_max_age: 0\n"
                      f"extra_sources: ['{repository.line}']\n")
    run = ("-r", str(config))
    assert dm.json(*run, "--init")["exit_code"] == 0
    top = dm.root_dir("dm-upgrading")

    def state() -> dict[str, object]:
        base = json.loads((top / "state.json").read_text())["base"]
        assert isinstance(base, dict)
        return base

    def cache_files() -> list[tuple[str, float]]:
        cache = dm.basedir.parent / "cache" / "dm-upgrading" / "root_cache"
        return sorted((p.name, p.stat().st_mtime) for p in cache.iterdir())

    first_id, cached = state()["content_id"], cache_files()
    dsc = make_source(tmp_path, "dm-upgrade-probe")
    same = dm.json(*run, "--resultdir", str(tmp_path / "same"), "--rebuild", str(dsc))
    assert same["exit_code"] == 0 and same["base_upgraded"] == [] and state()["content_id"] == first_id, same
    old = next(line for line in (tmp_path / "same/installed-pkgs.log").read_text().splitlines()
               if line.startswith("libaudit-common "))
    assert dm.json(*run, "--install", "tree")["exit_code"] == 0  # the root's own state: a dpkg database of its own
    repository.add("libaudit-common", "99:1.0", "a newer libaudit-common than the archive's",
                   extra="Multi-Arch: foreign\n")
    kept = dm.json(*run, "--resultdir", str(tmp_path / "kept"), "--rebuild", str(dsc), "--no-apt-upgrade")
    assert kept["exit_code"] == 0 and state()["content_id"] == first_id, kept
    assert old in (tmp_path / "kept/installed-pkgs.log").read_text().splitlines()
    upgraded = dm.json(*run, "--resultdir", str(tmp_path / "upgraded"), "--rebuild", str(dsc))
    assert upgraded["exit_code"] == 0, upgraded
    assert any(c.startswith("libaudit-common ") and c.endswith("-> 99:1.0")
               for c in upgraded["base_upgraded"]), upgraded  # type: ignore[union-attr]
    assert "libaudit-common 99:1.0" in (tmp_path / "upgraded/installed-pkgs.log").read_text().splitlines()
    assert state()["content_id"] != first_id and state()["upgraded_from"] == first_id
    assert "base upgraded" in (tmp_path / "upgraded/root.log").read_text()
    assert cache_files() == cached  # the root cache still holds the base as bootstrapped
    own = dm.ok(*run, "--chroot", "dpkg-query -W libaudit-common tree").stdout.split()
    assert own[:2] == ["libaudit-common", "99:1.0"] and own[2] == "tree", own  # the root's state followed
    again = dm.json(*run, "--resultdir", str(tmp_path / "again"), "--rebuild", str(dsc))
    assert again["exit_code"] == 0 and again["base_upgraded"] == [], again  # once: it is current now


def test_results_are_signed_with_the_operators_key(dm: DebMock, trixie: dict[str, object], tmp_path: Path) -> None:
    """-k signs the .changes, .buildinfo and .dsc of a source build (debsign, a throw-away GNUPGHOME)."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {**dm.env, "GNUPGHOME": str(home)}
    subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "deb-mock test <t@example.invalid>",
                    "ed25519", "sign", "never"], env=env, check=True, capture_output=True)
    listing = subprocess.run(["gpg", "--list-secret-keys", "--with-colons"], env=env, check=True,
                             capture_output=True, text=True).stdout
    keyid = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    public = tmp_path / "public.gpg"
    public.write_bytes(subprocess.run(["gpg", "--export", keyid], env=env, check=True, capture_output=True).stdout)
    signer = DebMock(dm.basedir, env)
    dsc = make_source(tmp_path, "dm-signed")
    out = tmp_path / "out"
    result = signer.json(*R, "--resultdir", str(out), "--rebuild", str(dsc), "--source", "-k", keyid)
    assert result["exit_code"] == 0, result
    signed = result["signed"]["files"]  # type: ignore[index]
    assert sorted(Path(p).suffix for p in signed) == [".buildinfo", ".changes", ".dsc"], signed
    for path in signed:
        check = subprocess.run(["gpgv", "--keyring", str(public), path], capture_output=True, text=True)
        assert check.returncode == 0 and "Good signature" in check.stderr, (path, check.stderr)
    digests = {Path(a["path"]).name: a["sha256"] for a in result["artifacts"]}  # type: ignore[union-attr]
    changes = next(out.glob("*.changes"))
    assert digests[changes.name] == hashlib.sha256(changes.read_bytes()).hexdigest()  # recorded after signing
    wrong = signer.json(*R, "--resultdir", str(tmp_path / "unsigned"), "--rebuild", str(dsc), "-k", "0000DEADBEEF")
    assert wrong["exit_code"] == 13 and "stay unsigned" in str(wrong["error"]), wrong
    assert next((tmp_path / "unsigned").glob("*.changes")).read_text().startswith("Format:")
