"""A current base and the aptitude resolver: the decisions, without apt (test_archive.py runs them for real)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deb_mock import apt, aptitude_resolver, base_upgrade
from deb_mock.config.schema import Config
from deb_mock.layerstore import LayerStore, RootPaths

SIMULATED = [
    "Reading package lists...",
    "Inst libaudit-common [1:4.0.2-2] (99:1.0 localhost [all])",
    "Inst dm-new (2.0 localhost [amd64])",
    "Remv dm-old [1.0]",
    "Conf libaudit-common (99:1.0 localhost [all])",
]


def test_planned_changes_name_old_and_new_versions() -> None:
    assert apt.planned_changes(SIMULATED) == ["dm-new (new) 2.0", "dm-old removed",
                                              "libaudit-common 1:4.0.2-2 -> 99:1.0"]
    assert apt.planned_changes(["Reading package lists...", "0 upgraded, 0 newly installed."]) == []


def test_an_error_about_the_aptitude_script_names_it_not_its_text() -> None:
    argv = aptitude_resolver.build_deps_command(["make"], [], "amd64", ())
    assert apt.describe(argv) == aptitude_resolver.NAME
    assert apt.describe(apt.upgrade_command()) == "apt-get dist-upgrade"


def test_aptitude_gets_the_relations_and_never_leaves_the_dummy_out() -> None:
    argv = aptitude_resolver.build_deps_command(["a | b, c [amd64]", " "], ["d"], "amd64", ("nocheck",))
    assert argv[4:8] == ["build-essential:native, a | b, c [amd64]", "d", "amd64", "nocheck"]
    assert f"Aptitude::ProblemResolver::Hints::KeepDummy=reject {aptitude_resolver.DUMMY} :UNINST" in argv
    assert "Aptitude::ProblemResolver::Remove-Essential-Tier=maximum" in argv


def _store(tmp_path: Path) -> LayerStore:
    store = LayerStore(RootPaths(tmp_path / "root"))
    (tmp_path / "root" / "base").mkdir(parents=True)
    store.paths.top.mkdir(exist_ok=True)
    store.write_state({"base": {"content_id": "A", "lists_updated": 100.0, "upgrade_checked": "50.0"},
                       "layers": []})
    store.ensure_upper()
    return store


def test_a_dpkg_database_above_the_base_is_found_without_following_links(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert store.package_state_above_base() == []
    (store.paths.upper / "var" / "lib" / "dpkg").mkdir(parents=True)
    assert store.package_state_above_base() == []
    (store.paths.upper / "var" / "lib" / "dpkg" / "status").write_text("")
    assert store.package_state_above_base() == ["upper"]
    store.snapshot("one")
    assert store.package_state_above_base() == ["one"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, store.paths.upper / "var")  # a link counts as state, and is never followed
    assert store.package_state_above_base() == ["one", "upper"]


class _Services:
    """What keep_base_current uses of RootServices, recording the apt runs."""

    def __init__(self, store: LayerStore, *, offline: bool = False, plan: list[str] | None = None) -> None:
        self.config = Config(offline=offline)
        self.store = store
        self.paths = store.paths
        self.plan = plan or []
        self.apt_runs: list[str] = []
        self.warnings: list[str] = []
        self.console = self
        self.logs = self
        self.root_log: list[str] = []

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def info(self, text: str) -> None:
        pass

    def write_root_log(self, text: str) -> None:
        self.root_log.append(text)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        yield

    def refresh_lists_if_stale(self, *, in_base: bool) -> None:
        assert in_base

    def base_as_root(self, tree: Path) -> Path:
        return tree

    def apt_run(self, argv: list[str], stage: str, root_fs: Any = None) -> list[str]:
        self.apt_runs.append(stage)
        return self.plan if "--simulate" in argv else []


def test_newer_packages_upgrade_the_base_once_and_give_it_a_new_content_id(tmp_path: Path) -> None:
    store = _store(tmp_path)
    services = _Services(store, plan=SIMULATED)
    changes = base_upgrade.keep_base_current(services, allowed=True)  # type: ignore[arg-type]
    assert changes == apt.planned_changes(SIMULATED)
    assert services.apt_runs == ["apt-plan-upgrade", "apt-dist-upgrade"]
    info = store.base_info()
    assert info["content_id"].startswith("upgraded-") and info["upgraded_from"] == "A"
    assert info["upgrade_checked"] == store.lists_stamp() and "libaudit-common" in services.root_log[0]
    again = _Services(store, plan=SIMULATED)
    assert base_upgrade.keep_base_current(again, allowed=True) == []  # type: ignore[arg-type]
    assert again.apt_runs == []  # these lists were looked at: no apt run


def test_the_same_changes_on_the_same_base_give_the_same_id(tmp_path: Path) -> None:
    ids = []
    for name in ("one", "two"):
        store = _store(tmp_path / name)
        base_upgrade.keep_base_current(_Services(store, plan=SIMULATED), allowed=True)  # type: ignore[arg-type]
        ids.append(store.base_content_id())
    assert ids[0] == ids[1] != "A"


def test_the_roots_own_packages_follow_the_base_and_snapshots_get_a_warning(tmp_path: Path) -> None:
    store = _store(tmp_path)
    (store.paths.upper / "var" / "lib" / "dpkg").mkdir(parents=True)
    (store.paths.upper / "var" / "lib" / "dpkg" / "status").write_text("")
    store.snapshot("before")
    (store.paths.upper / "var" / "lib" / "dpkg").mkdir(parents=True)
    (store.paths.upper / "var" / "lib" / "dpkg" / "status").write_text("")
    services = _Services(store, plan=SIMULATED)
    assert base_upgrade.keep_base_current(services, allowed=True)  # type: ignore[arg-type]
    assert services.apt_runs == ["apt-plan-upgrade", "apt-dist-upgrade", "apt-update-root", "apt-dist-upgrade-root"]
    assert "before" in services.warnings[0] and "--update" in services.warnings[0]


@pytest.mark.parametrize("case", ["not allowed", "offline", "nothing newer"])
def test_the_base_is_left_as_it_is(tmp_path: Path, case: str) -> None:
    store = _store(tmp_path)
    services = _Services(store, offline=case == "offline", plan=[] if case == "nothing newer" else SIMULATED)
    assert base_upgrade.keep_base_current(services, allowed=case != "not allowed") == []  # type: ignore[arg-type]
    assert store.base_content_id() == "A"
    assert "apt-dist-upgrade" not in services.apt_runs
    if case == "offline":
        assert services.warnings and "offline" in services.warnings[0]
