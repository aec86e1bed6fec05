"""The plugin manager and the built-in plugins bind_mount, tmpfs and hw_info."""

from __future__ import annotations

import dataclasses
import sys
import types
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pluggy
import pytest
import pytest_mock
from deb_mock.plugins import apt_cache, bind_mount, bootc, ccache, chroot_scan, hw_info, lintian, root_cache, tmpfs

from deb_mock import hookimpl, hookspecs, plugin_manager
from deb_mock.config import Config
from deb_mock.errors import ConfigError
from deb_mock.plugin_manager import (
    BUILTIN_PLUGINS,
    DISABLE_ENV,
    config_sections,
    describe_plugins,
    drop_disabled,
    make_plugin_manager,
    plugin_name,
)
from deb_mock.sandbox.spec import Bind, Tmpfs

BUILTINS = {"bind_mount", "tmpfs", "hw_info", "lintian", "chroot_scan", "root_cache", "apt_cache", "ccache", "bootc"}


@pytest.fixture(autouse=True)
def no_disabled_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DISABLE_ENV, raising=False)


def names(pm: pluggy.PluginManager) -> set[str]:
    return {name for name, plugin in pm.list_name_plugin() if plugin is not None}


def stand_in(plugins: dict[str, object], **attrs: object) -> SimpleNamespace:
    """Just enough of a Root for hooks that read ``root.config``."""
    config = dataclasses.replace(Config(name="unit"), plugins=plugins)
    return SimpleNamespace(config=config, **attrs)


# -- the manager --------------------------------------------------------------------------


def test_builtins_are_registered() -> None:
    pm = make_plugin_manager()
    assert names(pm) >= BUILTINS
    assert pm.get_plugin("tmpfs") is tmpfs
    assert pm.get_plugin("bind_mount") is bind_mount
    assert pm.get_plugin("hw_info") is hw_info
    assert pm.project_name == hookspecs.PROJECT


def test_builtin_module_names_match_plugins() -> None:
    assert {name.rsplit(".", 1)[-1] for name in BUILTIN_PLUGINS} == BUILTINS
    assert plugin_name(tmpfs) == "tmpfs"
    assert plugin_name(ModuleType("x.y.zed")) == "zed"


def test_disabled_argument_blocks_a_plugin() -> None:
    pm = make_plugin_manager(disabled=["tmpfs"])
    assert "tmpfs" not in names(pm)
    assert pm.is_blocked("tmpfs")
    assert {"bind_mount", "hw_info"} <= names(pm)


def test_environment_blocks_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DISABLE_ENV, "hw_info,bind_mount")
    pm = make_plugin_manager()
    assert "hw_info" not in names(pm)
    assert "bind_mount" not in names(pm)
    assert "tmpfs" in names(pm)
    sections = config_sections(pm)
    assert set(sections) == BUILTINS
    # a blocked plugin keeps a placeholder section that configs may still mention
    assert sections["hw_info"] is not hw_info.Settings and sections["tmpfs"] is tmpfs.Settings


def test_environment_blocks_one_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DISABLE_ENV, "tmpfs")
    pm = make_plugin_manager()
    assert names(pm) >= {"bind_mount", "hw_info"}
    assert "tmpfs" not in names(pm)


class _Misspelled:
    """A plugin whose author mistyped a hook name."""

    @hookimpl
    def debmock_mountz(self, root: object, purpose: str) -> list[object]:
        return []


def test_check_pending_refuses_a_misspelled_hook() -> None:
    pm = make_plugin_manager()
    plugin = _Misspelled()
    pm.register(plugin, name="misspelled")
    with pytest.raises(pluggy.PluginValidationError) as info:
        pm.check_pending()
    assert info.value.plugin is plugin
    assert "debmock_mountz" in str(info.value)


def test_make_plugin_manager_turns_a_misspelled_entry_point_hook_into_config_error(
    mocker: pytest_mock.MockerFixture,
) -> None:
    def load_entry_points(self: pluggy.PluginManager, group: str, name: str | None = None) -> int:
        self.register(_Misspelled(), name="misspelled")
        return 1

    mocker.patch.object(pluggy.PluginManager, "load_setuptools_entrypoints", load_entry_points)
    mocker.patch("deb_mock.plugin_manager.declared_plugins", return_value={"misspelled"})
    with pytest.raises(Exception) as info:
        make_plugin_manager()
    error = info.value
    assert isinstance(error, ConfigError), f"{type(error).__name__}: {error}"
    assert "misspelled" in str(error)
    assert "debmock_mountz" in str(error)


def test_entry_points_are_read_from_dist_info_and_only_third_party_ones_cost_a_scan(
    tmp_path: Path, mocker: pytest_mock.MockerFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    dist = tmp_path / "third_party-1.0.dist-info"
    dist.mkdir()
    (dist / "entry_points.txt").write_text("[console_scripts]\nx = a:b\n\n[deb_mock]\n# a comment\n"
                                           "bind_mount = deb_mock.plugins.bind_mount\nextra = third_party.plugin\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path), str(tmp_path / "missing")])
    assert plugin_manager.declared_plugins() == {"bind_mount", "extra"}
    scan = mocker.patch.object(pluggy.PluginManager, "load_setuptools_entrypoints", return_value=0)
    make_plugin_manager()
    assert scan.call_count == 1  # "extra" is no built-in: pluggy's loader runs
    (dist / "entry_points.txt").write_text("[deb_mock]\nbind_mount = deb_mock.plugins.bind_mount\n")
    make_plugin_manager()
    assert scan.call_count == 1  # built-ins only: no scan of every distribution's metadata


def test_check_pending_refuses_a_misspelled_hook_in_a_module() -> None:
    module = ModuleType("third_party_plugin")

    @hookimpl
    def debmock_mountz(root: object, purpose: str) -> list[object]:
        return []

    module.debmock_mountz = debmock_mountz  # type: ignore[attr-defined]
    pm = make_plugin_manager()
    pm.register(module, name="third_party")
    with pytest.raises(pluggy.PluginValidationError, match="debmock_mountz"):
        pm.check_pending()


def test_check_pending_accepts_known_hooks() -> None:
    class Good:
        @hookimpl
        def debmock_mounts(self, root: object, purpose: str) -> list[object]:
            return [Tmpfs("/good")]

    pm = make_plugin_manager()
    pm.register(Good(), name="good")
    pm.check_pending()
    root = stand_in({"tmpfs": tmpfs.Settings(mounts=()), "bind_mount": bind_mount.Settings()})
    results = pm.hook.debmock_mounts(root=root, purpose="chroot")
    assert [Tmpfs("/good")] in results


def test_a_wrong_hook_signature_is_refused() -> None:
    class Bad:
        @hookimpl
        def debmock_mounts(self, root: object, purpose: str, extra: int) -> list[object]:
            return []

    pm = make_plugin_manager()
    with pytest.raises(pluggy.PluginValidationError):
        pm.register(Bad(), name="bad")


def test_managers_are_independent() -> None:
    first = make_plugin_manager()
    second = make_plugin_manager()
    assert first is not second
    first.unregister(name="tmpfs")
    assert "tmpfs" not in names(first)
    assert "tmpfs" in names(second)
    assert "tmpfs" in config_sections(second)
    assert "tmpfs" not in config_sections(first)
    third = make_plugin_manager()
    assert "tmpfs" in names(third)


def test_config_sections_are_frozen_dataclasses_with_enabled() -> None:
    sections = config_sections(make_plugin_manager())
    assert sections == {
        "bind_mount": bind_mount.Settings,
        "tmpfs": tmpfs.Settings,
        "hw_info": hw_info.Settings,
        "lintian": lintian.Settings,
        "chroot_scan": chroot_scan.Settings,
        "root_cache": root_cache.Settings,
        "apt_cache": apt_cache.Settings,
        "ccache": ccache.Settings,
        "bootc": bootc.Settings,
    }
    for cls in sections.values():
        assert dataclasses.is_dataclass(cls)
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
        assert "enabled" in {f.name for f in dataclasses.fields(cls)}


def test_drop_disabled() -> None:
    pm = make_plugin_manager()
    drop_disabled(
        pm,
        {
            "tmpfs": tmpfs.Settings(enabled=False),
            "hw_info": hw_info.Settings(enabled=True),
            "bind_mount": bind_mount.Settings(enabled=False),
        },
    )
    assert "tmpfs" not in names(pm)
    assert "bind_mount" not in names(pm)
    assert "hw_info" in names(pm)


def test_drop_disabled_ignores_unregistered_and_settings_without_enabled() -> None:
    pm = make_plugin_manager(disabled=["tmpfs"])
    drop_disabled(pm, {"tmpfs": tmpfs.Settings(enabled=False), "hw_info": object()})
    assert names(pm) >= {"hw_info", "bind_mount"}


def test_describe_plugins() -> None:
    everything = make_plugin_manager()
    active = make_plugin_manager()
    active.unregister(name="tmpfs")
    infos = {info.name: info for info in describe_plugins(everything, active)}
    assert set(infos) >= BUILTINS
    assert infos["tmpfs"].enabled is False
    assert infos["hw_info"].enabled is True
    assert infos["tmpfs"].source == "built-in"
    assert infos["tmpfs"].version
    assert "debmock_mounts" in infos["tmpfs"].hooks
    assert "debmock_config_sections" in infos["hw_info"].hooks
    assert "debmock_pre_build" in infos["hw_info"].hooks


# -- tmpfs -------------------------------------------------------------------------------------


def test_tmpfs_mounts() -> None:
    settings = tmpfs.Settings(
        enabled=True,
        mounts=(tmpfs.TmpfsEntry("/build", size="4G"), tmpfs.TmpfsEntry("/var/tmp", "50%", 0o1777)),
    )
    root = stand_in({"tmpfs": settings})
    assert tmpfs.debmock_mounts(root=root, purpose="chroot") == [
        Tmpfs("/build", size="4G", mode=0o755),
        Tmpfs("/var/tmp", size="50%", mode=0o1777),
    ]


def test_tmpfs_defaults() -> None:
    settings = tmpfs.Settings()
    assert settings.enabled is False
    root = stand_in({"tmpfs": settings})
    assert tmpfs.debmock_mounts(root=root, purpose="build") == [Tmpfs("/build", size="2G", mode=0o1777)]


@pytest.mark.parametrize("size", ["512M", "2G", "50%", "1024", "4g"])
def test_tmpfs_configure_accepts_sizes(size: str) -> None:
    root = stand_in({"tmpfs": tmpfs.Settings(mounts=(tmpfs.TmpfsEntry("/build", size),))})
    tmpfs.debmock_configure(root=root)


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        (tmpfs.TmpfsEntry("/build", "lots"), "size 'lots'"),
        (tmpfs.TmpfsEntry("/build", "2T"), "size '2T'"),
        (tmpfs.TmpfsEntry("build"), "target 'build'"),
        (tmpfs.TmpfsEntry("/"), "target '/'"),
    ],
)
def test_tmpfs_configure_refuses(entry: tmpfs.TmpfsEntry, fragment: str) -> None:
    root = stand_in({"tmpfs": tmpfs.Settings(mounts=(entry,))})
    with pytest.raises(ConfigError, match=fragment):
        tmpfs.debmock_configure(root=root)


# -- bind_mount -------------------------------------------------------------------------------


def test_bind_mount_mounts(tmp_path: Path) -> None:
    settings = bind_mount.Settings(
        mounts=(
            bind_mount.BindMountEntry(str(tmp_path), "/data"),
            bind_mount.BindMountEntry("/srv/out", "/out", readonly=False),
        )
    )
    root = stand_in({"bind_mount": settings})
    assert bind_mount.debmock_mounts(root=root, purpose="shell") == [
        Bind(str(tmp_path), "/data", readonly=True),
        Bind("/srv/out", "/out", readonly=False),
    ]


def test_bind_mount_none_by_default() -> None:
    root = stand_in({"bind_mount": bind_mount.Settings()})
    assert bind_mount.debmock_mounts(root=root, purpose="chroot") == []


def test_bind_mount_configure(tmp_path: Path) -> None:
    good = bind_mount.Settings(mounts=(bind_mount.BindMountEntry(str(tmp_path), "/data"),))
    bind_mount.debmock_configure(root=stand_in({"bind_mount": good}))
    missing = bind_mount.Settings(
        mounts=(bind_mount.BindMountEntry(str(tmp_path / "absent"), "/data"),)
    )
    with pytest.raises(ConfigError, match="does not exist"):
        bind_mount.debmock_configure(root=stand_in({"bind_mount": missing}))
    relative = bind_mount.Settings(mounts=(bind_mount.BindMountEntry(str(tmp_path), "data"),))
    with pytest.raises(ConfigError, match="absolute"):
        bind_mount.debmock_configure(root=stand_in({"bind_mount": relative}))


def test_mounts_through_the_hook(tmp_path: Path) -> None:
    pm = make_plugin_manager()
    root = stand_in(
        {
            "tmpfs": tmpfs.Settings(enabled=True, mounts=(tmpfs.TmpfsEntry("/build", "1G"),)),
            "bind_mount": bind_mount.Settings(
                mounts=(bind_mount.BindMountEntry(str(tmp_path), "/data"),)
            ),
            "hw_info": hw_info.Settings(),
        }
    )
    mounts = [m for ms in pm.hook.debmock_mounts(root=root, purpose="chroot") for m in ms]
    assert sorted(mounts, key=repr) == sorted(
        [Tmpfs("/build", size="1G"), Bind(str(tmp_path), "/data")], key=repr
    )


# -- hw_info ---------------------------------------------------------------------------------


def test_describe_host(tmp_path: Path) -> None:
    lines = hw_info.describe_host(tmp_path)
    text = "\n".join(lines)
    assert "CPU" in text
    assert "Memory" in text
    assert "Storage" in text
    assert str(tmp_path) in text
    assert any(line.strip().startswith("kernel:") for line in lines)


def test_describe_host_with_missing_storage(tmp_path: Path) -> None:
    lines = hw_info.describe_host(tmp_path / "not-there")
    assert "  /: " in "\n".join(lines) or any(line.startswith("  /:") for line in lines)


def test_hw_info_writes_log_with_a_build_not_on_enter(tmp_path: Path) -> None:
    root = stand_in({"hw_info": hw_info.Settings()}, resultdir=tmp_path)
    root.config = dataclasses.replace(root.config, basedir=str(tmp_path))
    pm = make_plugin_manager(disabled=["tmpfs", "bind_mount"])
    pm.hook.debmock_enter(root=root, purpose="chroot")
    assert not (tmp_path / "hw_info.log").exists()
    build = types.SimpleNamespace(resultdir=tmp_path / "build")
    build.resultdir.mkdir()
    pm.hook.debmock_pre_build(root=root, build=build)
    log = (tmp_path / "build" / "hw_info.log").read_text(encoding="utf-8")
    assert log.startswith("CPU info:")
    assert "Memory:" in log
    assert log.endswith("\n")
