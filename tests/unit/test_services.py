"""The root's services, constructed directly: sandbox specs per purpose, without a subprocess."""

from __future__ import annotations

import dataclasses
import io
import tempfile
import time
from pathlib import Path

import pluggy
import pytest

from deb_mock import hookimpl, hookspecs
from deb_mock.config import Config
from deb_mock.config.schema import SandboxConfig
from deb_mock.errors import RootError
from deb_mock.layerstore import RootPaths
from deb_mock.logs import Console
from deb_mock.sandbox.spec import Bind, DirectoryRoot, OverlayRoot, Tmpfs
from deb_mock.services import Purpose, RootIdentity, RootServices


class _AptCacheLike:
    """A plugin that mounts something for apt runs only, and records the purposes it saw."""

    def __init__(self) -> None:
        self.seen: list[Purpose] = []

    @hookimpl
    def debmock_mounts(self, root: RootServices, purpose: Purpose) -> list[Bind]:
        self.seen.append(purpose)
        return [Bind("/var/cache/x", "/var/cache/apt/archives", readonly=False)] if purpose == "apt" else []


def _services(tmp_path: Path, plugin: object | None = None, **config: object) -> RootServices:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if plugin is not None:
        pm.register(plugin)
    paths = RootPaths(tmp_path / "unit")
    cfg = dataclasses.replace(Config(name="unit", basedir=str(tmp_path)), **config)  # type: ignore[arg-type]
    identity = RootIdentity("unit", paths, paths.default_resultdir)
    return RootServices(cfg, identity, pm.hook, Console(json_mode=True, quiet=True, verbose=False))


@pytest.mark.parametrize(("purpose", "network"), [
    (Purpose.APT, True), (Purpose.INIT, True), (Purpose.CHROOT, True), (Purpose.SHELL, True),
    (Purpose.BUILD, False), (Purpose.COPY, False), (Purpose.QUERY, False), (Purpose.HELPER, False),
])
def test_network_by_purpose(tmp_path: Path, purpose: Purpose, network: bool) -> None:
    spec = _services(tmp_path).sandbox_spec(["true"], purpose=purpose)
    assert spec.network is network


def test_no_network_anywhere_when_offline(tmp_path: Path) -> None:
    services = _services(tmp_path, offline=True)
    assert not any(services.network_for(p) for p in Purpose)


def test_chroot_network_follows_the_config(tmp_path: Path) -> None:
    services = _services(tmp_path, sandbox=SandboxConfig(network=False))
    assert not services.network_for(Purpose.CHROOT)
    assert services.network_for(Purpose.APT)


def test_build_user_and_environment(tmp_path: Path) -> None:
    services = _services(tmp_path, sandbox=SandboxConfig(environment={"FOO": "bar"}))
    root = services.sandbox_spec(["id"], purpose=Purpose.CHROOT)
    user = services.sandbox_spec(["id"], purpose=Purpose.BUILD, unpriv=True, env={"HOME": "/nonexistent"})
    assert (root.uid, root.gid, root.env["HOME"], root.env["USER"]) == (0, 0, "/root", "root")
    assert (user.uid, user.gid, user.env["USER"]) == (1000, 1000, "build")
    assert user.env["HOME"] == "/nonexistent"  # the caller's environment wins over the defaults
    assert root.env["FOO"] == user.env["FOO"] == "bar"
    assert root.env["DEB_MOCK_ROOT"] == str(tmp_path / "unit") == root.marker


def test_tmpfs_tmp_only_for_builds_by_default(tmp_path: Path) -> None:
    services = _services(tmp_path)
    assert services.sandbox_spec(["true"], purpose=Purpose.BUILD).tmpfs_tmp
    assert not services.sandbox_spec(["true"], purpose=Purpose.CHROOT).tmpfs_tmp
    always = _services(tmp_path, sandbox=SandboxConfig(tmpfs_tmp="always"))
    assert always.sandbox_spec(["true"], purpose=Purpose.CHROOT).tmpfs_tmp


def test_plugin_mounts_come_first_and_see_the_purpose(tmp_path: Path) -> None:
    plugin = _AptCacheLike()
    services = _services(tmp_path, plugin)
    own = Tmpfs("/run/deb-mock", size="1M")
    apt = services.sandbox_spec(["apt-get", "update"], purpose=Purpose.APT, mounts=[own])
    build = services.sandbox_spec(["true"], purpose=Purpose.BUILD, mounts=[own])
    assert [m.target for m in apt.mounts] == ["/var/cache/apt/archives", "/run/deb-mock"]
    assert build.mounts == (own,)
    assert plugin.seen == [Purpose.APT, Purpose.BUILD]


def test_default_root_is_the_overlay_of_the_stack(tmp_path: Path) -> None:
    services = _services(tmp_path)
    spec = services.sandbox_spec(["true"], purpose=Purpose.QUERY)
    assert isinstance(spec.root, OverlayRoot)
    assert spec.root.lowers == (str(tmp_path / "unit" / "base"),)
    assert spec.root.upper == str(tmp_path / "unit" / "upper")
    bare = services.base_as_root(tmp_path / "unit" / "base")
    assert services.sandbox_spec(["true"], purpose=Purpose.INIT, root_fs=bare).root == DirectoryRoot(
        str(tmp_path / "unit" / "base"), str(tmp_path / "unit" / "mnt"))


def test_scratch_overlay_is_fresh_and_discarded(tmp_path: Path) -> None:
    services = _services(tmp_path)
    scratch = services.new_scratch("build")
    Path(scratch.upper, "left-over").write_text("x")
    again = services.new_scratch("build")
    assert not any(Path(again.upper).iterdir())
    services.discard_scratch("build")
    assert not Path(again.upper).exists()


def test_lists_are_stale_after_max_age_and_never_offline(tmp_path: Path) -> None:
    services = _services(tmp_path, apt_lists_max_age=60)
    services.paths.top.mkdir(parents=True)
    services.store.write_state({"base": {"created": 0.0}, "layers": []})
    assert services.lists_are_stale()
    services.store.update_base_info(lists_updated=time.time())
    assert not services.lists_are_stale(scratch=True)
    assert services.store.lists_stamp() != "0.0"
    assert not _services(tmp_path, offline=True).lists_are_stale()


def test_require_initialized_without_an_initializer_is_a_root_error(tmp_path: Path) -> None:
    with pytest.raises(RootError, match="not initialised"):
        _services(tmp_path).require_initialized()


def test_the_proxy_reaches_every_apt_run_and_nothing_else(tmp_path: Path) -> None:
    services = _services(tmp_path, apt_proxy="http://127.0.0.1:3142")
    assert services.sandbox_spec(["apt-get", "update"], purpose=Purpose.APT).env["http_proxy"] == \
        "http://127.0.0.1:3142"
    for purpose in (Purpose.BUILD, Purpose.CHROOT, Purpose.HELPER):
        assert "http_proxy" not in services.sandbox_spec(["true"], purpose=purpose).env, purpose
    assert "http_proxy" not in _services(tmp_path).sandbox_spec(["true"], purpose=Purpose.APT).env
    offline = _services(tmp_path, apt_proxy="http://127.0.0.1:3142", offline=True)
    assert "http_proxy" not in offline.sandbox_spec(["true"], purpose=Purpose.APT).env


def test_a_tool_layer_that_cannot_be_kept_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cache_topdir on another file system than basedir: the checker's layer cannot be renamed into the
    cache, so every check installs it again; the user is told why (the build-deps layer is, too)."""
    if Path("/dev/shm").stat().st_dev == tmp_path.stat().st_dev:
        pytest.fail("this test needs /dev/shm on another file system than pytest's tmp_path")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as cache_topdir:
        stream = io.StringIO()
        services = _services(tmp_path, cache_topdir=cache_topdir)
        services.console = Console(json_mode=True, quiet=True, verbose=False, stream=stream)
        services.paths.top.mkdir(parents=True)
        monkeypatch.setattr(services, "refresh_lists_if_stale", lambda *a, **k: None)
        monkeypatch.setattr(services, "apt_run", lambda *a, **k: [])  # apt itself: the integration tests
        with services.tool_root("lintian", ["lintian"]) as root_fs:
            assert isinstance(root_fs, OverlayRoot)
        assert "the lintian layer cannot be kept" in stream.getvalue()
        assert "Invalid cross-device link" in stream.getvalue() and "cache_topdir" in stream.getvalue()
        assert not (tmp_path / "unit" / "scratch" / "lintian").exists()
