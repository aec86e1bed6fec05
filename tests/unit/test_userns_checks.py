"""Rootless prerequisites: each missing one is named with what to do (exit 80).

tests/integration/test_rootless.py proves the same messages for real (a user
without a range, newuidmap not found, user.max_user_namespaces=0).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deb_mock import userns
from deb_mock.config import load_config
from deb_mock.config.loader import with_rootless_paths
from deb_mock.errors import ExitCode, SandboxError
from deb_mock.plugin_manager import config_sections, make_plugin_manager

SECTIONS = config_sections(make_plugin_manager())


@pytest.fixture
def ids(tmp_path: Path) -> tuple[Path, Path, Path]:
    subuid, subgid = tmp_path / "subuid", tmp_path / "subgid"
    subuid.write_text("other:100000:65536\nalice:200000:65536\n")
    subgid.write_text("1000:200000:65536\n")
    proc = tmp_path / "proc"
    (proc / "user").mkdir(parents=True)
    (proc / "kernel").mkdir()
    (proc / "user/max_user_namespaces").write_text("15000\n")
    return subuid, subgid, proc


def _check(ids: tuple[Path, Path, Path], user: str = "alice", kernel: str = "6.1.0-13-amd64") -> object:
    subuid, subgid, proc = ids
    return userns.check_prerequisites(user, 1000, subuid=subuid, subgid=subgid, proc_sys=proc, kernel=kernel)


def test_ranges_are_found_by_name_or_uid(ids: tuple[Path, Path, Path]) -> None:
    uids, gids = _check(ids)  # type: ignore[misc]
    assert (uids.start, gids.start) == (200000, 200000)
    assert userns.subordinate_range(ids[0], "nobody", 65534) is None


def test_no_range_names_the_usermod_command(ids: tuple[Path, Path, Path]) -> None:
    with pytest.raises(SandboxError, match="no subordinate id range") as caught:
        _check(ids, user="bob")
    assert "usermod --add-subuids" in str(caught.value) and caught.value.exit_code == ExitCode.SANDBOX


def test_a_range_too_small_is_no_range(ids: tuple[Path, Path, Path]) -> None:
    ids[0].write_text("alice:200000:1000\n")
    with pytest.raises(SandboxError, match="/etc/subuid"):
        _check(ids)


@pytest.mark.parametrize(("path", "value", "words"), [
    ("user/max_user_namespaces", "0", "user.max_user_namespaces"),
    ("kernel/unprivileged_userns_clone", "0", "kernel.unprivileged_userns_clone"),
    ("kernel/apparmor_restrict_unprivileged_userns", "1", "apparmor_restrict_unprivileged_userns"),
])
def test_sysctls_that_forbid_user_namespaces_are_named(ids: tuple[Path, Path, Path], path: str, value: str,
                                                       words: str) -> None:
    (ids[2] / path).write_text(value + "\n")
    with pytest.raises(SandboxError, match=words) as caught:
        _check(ids)
    assert "sysctl -w" in str(caught.value)


def test_old_kernels_are_refused_with_the_version_needed(ids: tuple[Path, Path, Path]) -> None:
    with pytest.raises(SandboxError, match=r"Linux 5\.11"):
        _check(ids, kernel="5.10.0-28-amd64")
    assert _check(ids, kernel="5.11.0")


def test_missing_newuidmap_names_the_package(ids: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SandboxError, match="newuidmap") as caught:
        _check(ids)
    assert "apt-get install uidmap" in str(caught.value)


def test_rootless_paths_only_replace_built_in_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "none"))
    loaded = load_config("trixie-amd64", [], SECTIONS)
    moved = with_rootless_paths(loaded, tmp_path / "data", tmp_path / "cache")
    assert moved.config.basedir == str(tmp_path / "data") and moved.config.cache_topdir == str(tmp_path / "cache")
    config = tmp_path / "c.yaml"
    config.write_text("templates: [trixie-amd64]\nbasedir: /srv/roots\n")
    placed = with_rootless_paths(load_config(str(config), [], SECTIONS), tmp_path / "data", tmp_path / "cache")
    assert placed.config.basedir == "/srv/roots" and placed.config.cache_topdir == str(tmp_path / "cache")
