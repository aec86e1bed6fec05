"""deb_mock.layerstore: a root's paths, its state.json and its layer stack."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from deb_mock.errors import RootError
from deb_mock.layerstore import STATE_VERSION, LayerStore, RootPaths, remove_tree
from deb_mock.sandbox.spec import OverlayRoot


@pytest.fixture
def store(tmp_path: Path) -> LayerStore:
    top = tmp_path / "trixie-amd64"
    top.mkdir()
    return LayerStore(RootPaths(top))


def test_root_paths() -> None:
    paths = RootPaths(Path("/var/lib/deb-mock/trixie-amd64"))
    top = Path("/var/lib/deb-mock/trixie-amd64")
    assert paths.base == top / "base"
    assert paths.layers == top / "layers"
    assert paths.upper == top / "upper"
    assert paths.work == top / "work"
    assert paths.mountpoint == top / "mnt"
    assert paths.state_file == top / "state.json"
    assert paths.default_resultdir == top / "result"
    # the lock lives beside the root, so scrubbing the root keeps it
    assert paths.lock_file == Path("/var/lib/deb-mock/trixie-amd64.lock")
    assert paths.incoming_base().parent == top
    assert paths.incoming_base().name.startswith("base.incoming-")


def test_state_of_a_new_root_is_empty(store: LayerStore) -> None:
    assert store.state() == {}
    assert not store.is_initialized()


def test_state_round_trip(store: LayerStore) -> None:
    state = {"base": {"suite": "trixie"}, "layers": ["one", "two"]}
    store.write_state(state)
    assert store.state() == {**state, "version": STATE_VERSION}
    assert state == {"base": {"suite": "trixie"}, "layers": ["one", "two"]}  # not mutated
    on_disk = json.loads(store.paths.state_file.read_text(encoding="utf-8"))
    assert on_disk["version"] == STATE_VERSION


def test_write_state_leaves_no_temporary_file(store: LayerStore) -> None:
    store.write_state({"layers": []})
    store.write_state({"layers": ["a"]})
    assert sorted(p.name for p in store.paths.top.iterdir()) == ["state.json"]
    assert store.state()["layers"] == ["a"]


def test_write_state_replaces_atomically(store: LayerStore) -> None:
    store.write_state({"layers": ["old"]})
    inode_before = store.paths.state_file.stat().st_ino
    store.write_state({"layers": ["new"]})
    # a rename, not a rewrite in place: readers see the old or the new file, never half
    assert store.paths.state_file.stat().st_ino != inode_before
    assert store.state()["layers"] == ["new"]


@pytest.mark.parametrize("content", ["{not json", "[1, 2]"])
def test_unreadable_state_is_a_root_error(store: LayerStore, content: str) -> None:
    store.paths.state_file.write_text(content, encoding="utf-8")
    with pytest.raises(RootError, match="--scrub=chroot"):
        store.state()


def test_is_initialized_needs_base_dir_and_state(store: LayerStore) -> None:
    store.write_state({"base": {"suite": "trixie"}})
    assert not store.is_initialized()  # no base directory
    store.paths.base.mkdir()
    assert store.is_initialized()
    store.write_state({"base": {}})
    assert not store.is_initialized()


def test_commit_base(store: LayerStore) -> None:
    incoming = store.paths.incoming_base()
    incoming.mkdir()
    (incoming / "etc").mkdir()
    (incoming / "etc" / "debian_version").write_text("13.0\n")
    store.paths.upper.mkdir()
    (store.paths.upper / "stale").write_text("x")
    store.commit_base(incoming, {"suite": "trixie", "config_digest": "abc"})
    assert not incoming.exists()
    assert (store.paths.base / "etc" / "debian_version").read_text() == "13.0\n"
    assert store.is_initialized()
    state = store.state()
    assert state["base"]["suite"] == "trixie"
    assert state["base"]["config_digest"] == "abc"
    assert isinstance(state["base"]["created"], float)
    assert state["layers"] == []
    assert list(store.paths.upper.iterdir()) == []
    assert store.paths.work.is_dir()
    assert store.paths.mountpoint.is_dir()


def test_commit_base_replaces_an_old_base(store: LayerStore) -> None:
    store.paths.base.mkdir()
    (store.paths.base / "old").write_text("old")
    incoming = store.paths.incoming_base()
    incoming.mkdir()
    (incoming / "new").write_text("new")
    store.commit_base(incoming, {})
    assert sorted(p.name for p in store.paths.base.iterdir()) == ["new"]


def test_reset_upper(store: LayerStore) -> None:
    store.ensure_upper()
    (store.paths.upper / "etc").mkdir()
    (store.paths.upper / "etc" / "changed").write_text("x")
    (store.paths.work / "junk").mkdir()
    store.reset_upper()
    assert store.paths.upper.is_dir()
    assert list(store.paths.upper.iterdir()) == []
    assert list(store.paths.work.iterdir()) == []


def test_lower_dirs_top_layer_first_base_last(store: LayerStore) -> None:
    layers = store.paths.layers
    assert store.lower_dirs() == (str(store.paths.base),)
    store.write_state({"base": {"x": 1}, "layers": ["first", "second", "third"]})
    assert store.lower_dirs() == (
        str(layers / "third"),
        str(layers / "second"),
        str(layers / "first"),
        str(store.paths.base),
    )


def test_overlay(store: LayerStore) -> None:
    store.write_state({"base": {"x": 1}, "layers": ["snap"]})
    overlay = store.overlay()
    assert overlay == OverlayRoot(
        lowers=(str(store.paths.layers / "snap"), str(store.paths.base)),
        upper=str(store.paths.upper),
        work=str(store.paths.work),
        mountpoint=str(store.paths.mountpoint),
    )
    assert store.paths.upper.is_dir()
    assert store.paths.work.is_dir()


def test_remove_leftovers(store: LayerStore) -> None:
    top = store.paths.top
    (top / "base.incoming-123" / "usr").mkdir(parents=True)
    (top / "base.incoming-456").mkdir()
    (top / "state.json.tmp-789").write_text("{}")
    (top / ".new-base.incoming-9-10").mkdir()  # killed between make_spread_directory's mkdir and rename
    store.paths.base.mkdir()
    store.write_state({"base": {"x": 1}})
    store.remove_leftovers()
    assert sorted(p.name for p in top.iterdir()) == ["base", "state.json"]


def test_scratch_overlay_is_a_fresh_directory_below_a_top_of_hierarchy(store: LayerStore) -> None:
    from deb_mock.spread_dirs import FS_TOPDIR_FL, inode_flags, mark_top_of_hierarchy

    store.paths.base.mkdir(parents=True)
    first = store.scratch_overlay("build")
    (Path(first.upper) / "left-over").write_text("x")
    second = store.scratch_overlay("build")
    scratch = store.paths.top / "scratch"
    assert sorted(p.name for p in scratch.iterdir()) == ["build"]
    assert sorted(p.name for p in (scratch / "build").iterdir()) == ["upper", "work"]
    assert list(Path(second.upper).iterdir()) == []
    flags = inode_flags(scratch)
    probe = store.paths.top / "probe"
    probe.mkdir()
    if mark_top_of_hierarchy(probe):  # where the file system takes the flag, scratch_overlay has set it
        assert flags is not None and flags & FS_TOPDIR_FL


def test_remove_leftovers_of_missing_root(tmp_path: Path) -> None:
    store = LayerStore(RootPaths(tmp_path / "never-created"))
    store.remove_leftovers()
    assert not (tmp_path / "never-created").exists()


@pytest.mark.parametrize("name", ["a:b", "a,b", "a\nb"])
def test_layer_store_refuses_overlay_unsafe_paths(tmp_path: Path, name: str) -> None:
    with pytest.raises(RootError, match="must not contain"):
        LayerStore(RootPaths(tmp_path / name))


def test_remove_tree(tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "e" / "f").write_text("x")
    (tmp_path / "file").write_text("x")
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_text("keep")
    (tmp_path / "link").symlink_to(target)
    remove_tree(tmp_path / "d")
    remove_tree(tmp_path / "file")
    remove_tree(tmp_path / "link")
    remove_tree(tmp_path / "absent")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target"]
    assert (target / "keep").read_text() == "keep"  # a symlink is removed, not followed


@pytest.mark.skipif(os.geteuid() != 0, reason="trusted.* xattrs need root (CI runs unit tests as root)")
def test_roots_from_before_user_namespaces_get_their_overlay_marks_in_user_xattrs(store: LayerStore) -> None:
    store.paths.base.mkdir(parents=True)
    store.write_state({"base": {"created": 1.0}, "layers": ["snap"]})  # no overlay_xattrs: made before
    opaque = store.paths.layers / "snap" / "etc" / "opaque-dir"
    opaque.mkdir(parents=True)
    os.setxattr(opaque, "trusted.overlay.opaque", b"y")
    store.ensure_upper()
    outside = store.paths.top.parent / "outside"
    outside.mkdir()
    os.setxattr(outside, "trusted.overlay.opaque", b"y")
    (store.paths.upper / "link").symlink_to(outside)  # never followed
    (store.paths.upper / "impure").mkdir()
    os.setxattr(store.paths.upper / "impure", "trusted.overlay.impure", b"y")
    assert store.adopt_user_xattrs()
    assert os.getxattr(opaque, "user.overlay.opaque") == b"y"
    assert os.getxattr(store.paths.upper / "impure", "user.overlay.impure") == b"y"
    assert "user.overlay.opaque" not in os.listxattr(outside)
    assert store.state()["overlay_xattrs"] == "user" and not store.adopt_user_xattrs()

