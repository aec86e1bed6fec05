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
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import DebMock
from tests.integration.debsrc import make_source

pytestmark = [pytest.mark.root, pytest.mark.network, pytest.mark.slow]
R = ("-r", "trixie-amd64")


@pytest.fixture
def local_repository(tmp_path: Path) -> Iterator[str]:
    """A flat repository with dm-extra-dep 7.0 (which the archive lacks) on 127.0.0.1; yields its apt line."""
    repo = tmp_path / "repo"
    tree = tmp_path / "dm-extra-dep"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(textwrap.dedent("""\
        Package: dm-extra-dep
        Version: 7.0
        Architecture: all
        Maintainer: deb-mock tests <tests@deb-mock.invalid>
        Description: a build dependency only the extra repository has
        """))
    repo.mkdir()
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(repo / "dm-extra-dep_7.0_all.deb")],
                   check=True, capture_output=True)
    packages = subprocess.run(["dpkg-scanpackages", "--multiversion", "."], cwd=repo, check=True,
                              capture_output=True).stdout
    (repo / "Packages").write_bytes(packages)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(repo))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"deb [trusted=yes] http://127.0.0.1:{server.server_address[1]}/ ./"
    server.shutdown()
    thread.join(timeout=5)


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
