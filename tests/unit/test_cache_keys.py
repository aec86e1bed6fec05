"""Cache keys and command lines of the root cache, apt cache and build-deps cache."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from deb_mock.plugins import root_cache

from deb_mock import apt
from deb_mock.bootstrap import bootstrap_digest
from deb_mock.config import Config

SIMULATION = """\
Reading package lists...
Building dependency tree...
The following NEW packages will be installed:
  autoconf automake
Inst autoconf (2.72-3.1 Debian:13.2/stable [all])
Inst automake (1:1.17-4 Debian:13.2/stable [all])
Conf autoconf (2.72-3.1 Debian:13.2/stable [all])
Inst m4 [1.4.19-7] (1.4.19-8 Debian:13.2/stable [amd64])
""".splitlines()


def test_bootstrap_digest_changes_with_every_shaping_key() -> None:
    base = Config(name="x")
    digest = bootstrap_digest(base)
    assert digest == bootstrap_digest(dataclasses.replace(base, description="other", lock_timeout=3))
    for change in ({"suite": "sid"}, {"architecture": "arm64"}, {"variant": "minbase"},
                   {"components": ("main", "contrib")}, {"mirror": "http://mirror.example/debian"},
                   {"packages": ("eatmydata",)}, {"keyrings": ("/k.gpg",)}, {"deb_src": True},
                   {"build_uid": 2000}):
        assert bootstrap_digest(dataclasses.replace(base, **change)) != digest, change
    # builders behind different proxies share root caches
    assert bootstrap_digest(dataclasses.replace(base, apt_proxy="http://127.0.0.1:3142")) == digest


def test_simulate_and_planned_installs() -> None:
    argv = apt.install_command(["fakeroot"])
    simulated = apt.simulate(argv)
    assert simulated[:2] == ["apt-get", "--simulate"] and simulated[2:] == argv[1:]
    wrapped = apt.simulate(["/bin/sh", "-c", "x", "sh", "apt-get", "build-dep", "./x.dsc"])
    assert wrapped[4:6] == ["apt-get", "--simulate"]
    assert apt.planned_installs(SIMULATION) == [
        "autoconf 2.72-3.1", "automake 1:1.17-4", "m4 1.4.19-8"]


def test_root_cache_tar_commands() -> None:
    create = root_cache.tar_create_command(Path("/b"), Path("/c/x.tar.zst"), "zstd")
    assert create[:6] == ["tar", "--create", "--file", "/c/x.tar.zst", "--directory", "/b"]
    assert {"--numeric-owner", "--xattrs", "--sort=name", "--one-file-system"} <= set(create)
    assert create[-3:] == ["-I", "zstd --fast=4 -T0", "."]
    extract = root_cache.tar_extract_command(Path("/c/x.tar"), Path("/t"), "none")
    assert "-I" not in extract and "--preserve-permissions" in extract


def test_unsafe_io_bootstrap_uses_mmdebstrap_eatmydata_hook_when_it_can(tmp_path: Path) -> None:
    from deb_mock.bootstrap import unsafe_io_args

    hooks = tmp_path / "eatmydata"
    config = Config(name="t", suite="trixie", architecture="amd64")
    assert unsafe_io_args(config, hooks) == []  # this mmdebstrap has no such hook directory
    hooks.mkdir()
    assert unsafe_io_args(config, hooks) == [f"--hook-dir={hooks}"]
    assert unsafe_io_args(dataclasses.replace(config, offline=True), hooks) == []
    assert unsafe_io_args(dataclasses.replace(config, bootstrap_unsafe_io=False), hooks) == []
