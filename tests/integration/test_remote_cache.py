"""The remote cache tier for real: Debian's docker-registry on loopback, two builders with their own caches.

Builder 1 bootstraps, builds and pushes (signed) its root cache and
build-deps layer; builder 2, whose local caches are empty and who trusts
the farm's key, restores both from the registry (no bootstrap, no apt) and
builds the same .deb; a corrupted blob in the registry's storage, and an
entry signed by a key builder 4 does not trust, are warnings and local
bootstraps; so is a registry that is stopped (builder 5: nothing listens
on its port). Each of those three then builds a package. (A registry that never answers: the unit tests, with real
sockets.)
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import DebMock
from tests.integration.debsrc import make_source

pytestmark = [pytest.mark.root, pytest.mark.network, pytest.mark.slow]


def _caches(dm: DebMock, name: str) -> Path:
    """A builder's cache_topdir: beside the session's roots, on their file system (layers are renamed there)."""
    return dm.basedir.parent / f"caches-{name}"


def _builder(dm: DebMock, tmp_path: Path, name: str, url: str, push: bool, trust: str = "") -> tuple[str, ...]:
    """A builder: its own root and its own caches (but the machine's apt cache), the shared registry;
    a pusher signs with the farm's key, ``trust`` is the keyring a puller checks signatures with."""
    config = tmp_path / f"{name}.yaml"
    config.write_text(f"templates: [trixie-amd64]\nname: trixie-amd64\n"
                      f"plugins:\n  apt_cache:\n    dir: {dm.basedir.parent / 'cache' / 'apt-cache' / 'trixie-amd64'}\n"
                      f"remote_cache:\n  url: {url}\n  push: {'true' if push else 'false'}\n"
                      + ("  sign_key: farm@example.org\n" if push else "")
                      + (f"  keyrings: [{trust}]\n" if trust else ""))
    # on the command line: the session's user config names its own cache_topdir, and wins over a chroot config
    return ("-r", str(config), "--uniqueext", name, "--config-opts", f"cache_topdir={_caches(dm, name)}")


def _keyring(home: Path, user: str) -> Path:
    """A fresh signing key of ``user`` in the GnuPG home ``home``, and its public keyring file."""
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(["gpg", "--batch", "--quiet", "--passphrase", "", "--quick-gen-key", user, "ed25519", "sign",
                    "never"], env=env, check=True, capture_output=True)
    keyring = home / "public.gpg"
    keyring.write_bytes(subprocess.run(["gpg", "--batch", "--export", user], env=env, check=True,
                                       capture_output=True).stdout)
    return keyring


def test_a_second_builder_restores_what_the_first_pushed(dm: DebMock, registry: tuple[str, Path],
                                                         tmp_path: Path) -> None:
    url, storage = registry
    farm_key = _keyring(tmp_path / "gnupg-farm", "farm@example.org")
    stranger = _keyring(tmp_path / "gnupg-stranger", "stranger@example.org")
    first = _builder(dm, tmp_path, "farm1", url, push=True)
    second = _builder(dm, tmp_path, "farm2", url, push=False, trust=str(farm_key))
    third = _builder(dm, tmp_path, "farm3", url, push=False)
    fourth = _builder(dm, tmp_path, "farm4", url, push=False, trust=str(stranger))
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed: a stopped registry
        probe.bind(("127.0.0.1", 0))
        stopped = f"oci://127.0.0.1:{probe.getsockname()[1]}/deb-mock/cache"
    fifth = _builder(dm, tmp_path, "farm5", stopped, push=True)
    dm.env["GNUPGHOME"] = str(tmp_path / "gnupg-farm")  # builder 1 signs with the operator's gpg
    try:
        made = dm.json(*first, "--init")
        assert made["exit_code"] == 0, made
        assert "bootstrap" in made["durations"] and "remote-cache-push" in made["durations"], made  # type: ignore[operator]
        pushed = made["remote_cache"]["root"]  # type: ignore[index]
        assert pushed["pushed"].startswith("root-") and pushed["bytes"] > 10 << 20, pushed

        restored = dm.json(*second, "--init")
        assert restored["exit_code"] == 0, restored
        durations = restored["durations"]
        assert "remote-cache-pull" in durations and "bootstrap" not in durations, durations  # type: ignore[operator]
        assert restored["remote_cache"] == {"root": {"pulled": pushed["pushed"], "bytes": pushed["bytes"]}}
        states = [json.loads((dm.root_dir(f"trixie-amd64-{n}") / "state.json").read_text()) for n in ("farm1", "farm2")]
        assert states[0]["base"]["content_id"] == states[1]["base"]["content_id"]  # the very same base
        assert dm.ok(*second, "--chroot", "cat /etc/debian_version").stdout.startswith("13")

        # the build dependencies: installed and pushed by builder 1, pulled by builder 2 (no apt run there)
        dsc = make_source(tmp_path / "src", "dm-farm", build_depends="debhelper-compat (= 13), libpopt-dev")
        built = [dm.json(*b, "--resultdir", str(tmp_path / f"out-{n}"), "--rebuild", str(dsc))
                 for n, b in (("1", first), ("2", second))]
        assert [b["exit_code"] for b in built] == [0, 0], built
        assert built[0]["remote_cache"]["build-deps"]["pushed"].startswith("deps-"), built[0]  # type: ignore[index]
        assert built[1]["remote_cache"]["build-deps"]["pulled"] == \
            built[0]["remote_cache"]["build-deps"]["pushed"]  # type: ignore[index]
        assert "apt-build-dep" in built[0]["durations"] and "apt-build-dep" not in built[1]["durations"]  # type: ignore[operator]
        assert "pulled from" in (tmp_path / "out-2" / "root.log").read_text()
        debs = [(tmp_path / f"out-{n}" / "dm-farm_1.0_all.deb").read_bytes() for n in ("1", "2")]
        assert debs[0] == debs[1]

        # a blob corrupted in the registry's storage: a warning, a local bootstrap, a working root
        layer = max((storage / "docker/registry/v2/blobs/sha256").rglob("data"), key=lambda p: p.stat().st_size)
        data = bytearray(layer.read_bytes())
        data[len(data) // 2] ^= 0xFF
        layer.write_bytes(bytes(data))
        fallback = dm.json(*third, "--init")
        assert fallback["exit_code"] == 0, fallback
        assert "bootstrap" in fallback["durations"], fallback  # type: ignore[operator]
        assert "is corrupt" in str(fallback["_stderr"]) and "bootstrapping locally" in str(fallback["_stderr"])
        left = (_caches(dm, "farm3") / "trixie-amd64" / "root_cache").iterdir()
        assert not [p.name for p in left if ".pull-" in p.name]

        # signed by a key its keyring does not hold: a miss, a local bootstrap
        doubting = dm.json(*fourth, "--init")
        assert doubting["exit_code"] == 0 and "bootstrap" in doubting["durations"], doubting  # type: ignore[operator]
        assert "no good signature" in str(doubting["_stderr"]), doubting["_stderr"]

        # the registry stopped: a warning, a local bootstrap, and the push after it fails with a warning too
        alone = dm.json(*fifth, "--init")
        assert alone["exit_code"] == 0 and "bootstrap" in alone["durations"], alone  # type: ignore[operator]
        assert "refused" in str(alone["_stderr"]) and "bootstrapping locally" in str(alone["_stderr"]), \
            alone["_stderr"]
        assert "pushing root-" in str(alone["_stderr"]), alone["_stderr"]

        # and each of the three still builds, on its own bootstrap (apt where the registry gives nothing usable)
        plain = make_source(tmp_path / "src-plain", "dm-farm-plain")
        fallbacks = {n: dm.json(*b, "--disable-plugin", "lintian", "--resultdir", str(tmp_path / f"out-{n}"),
                                "--rebuild", str(plain)) for n, b in (("3", third), ("4", fourth), ("5", fifth))}
        for n, build in fallbacks.items():
            assert build["exit_code"] == 0, build
            assert (tmp_path / f"out-{n}" / "dm-farm-plain_1.0_all.deb").is_file()
        stopped_build = str(fallbacks["5"]["_stderr"])
        assert "refused" in stopped_build and "installing the build dependencies here" in stopped_build, stopped_build

        malformed = dm.run(*second, "--remote-cache", "http://127.0.0.1/x", "--chroot", "true")
        assert malformed.returncode == 3 and "remote_cache.url" in malformed.stderr, malformed.stderr
    finally:
        dm.env.pop("GNUPGHOME", None)
        for builder in (first, second, third, fourth, fifth):
            dm.run(*builder, "--scrub=chroot")
