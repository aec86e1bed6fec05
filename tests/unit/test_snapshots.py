"""Snapshots in the layer store: renames only, and refusals that say what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deb_mock.errors import UsageError
from deb_mock.layerstore import LayerStore, RootPaths


@pytest.fixture
def store(tmp_path: Path) -> LayerStore:
    paths = RootPaths(tmp_path / "root")
    paths.top.mkdir()
    incoming = paths.incoming_base()
    (incoming / "etc").mkdir(parents=True)
    (incoming / "etc" / "os").write_text("base\n")
    layer_store = LayerStore(paths)
    layer_store.commit_base(incoming, {"bootstrap_digest": "d"})
    return layer_store


def change(store: LayerStore, name: str, text: str) -> None:
    (store.paths.upper / name).write_text(text)


def test_snapshot_freezes_the_upper_by_renaming_it(store: LayerStore) -> None:
    change(store, "a", "one")
    upper_inode = store.paths.upper.stat().st_ino
    store.snapshot("first")
    layer = store.paths.layers / "first"
    assert layer.stat().st_ino == upper_inode  # a rename, not a copy
    assert (layer / "a").read_text() == "one"
    assert store.upper_is_empty()
    assert [s["name"] for s in store.snapshots()] == ["first"]
    assert store.lower_dirs() == (str(layer), str(store.paths.base))


def test_layers_stack_top_first(store: LayerStore) -> None:
    for name in ("one", "two", "three"):
        change(store, name, name)
        store.snapshot(name)
    assert store.lower_dirs() == (
        *(str(store.paths.layers / n) for n in ("three", "two", "one")), str(store.paths.base))
    assert json.loads(store.paths.state_file.read_text())["layers"] == ["one", "two", "three"]


def test_rollback_drops_later_snapshots_and_changes(store: LayerStore) -> None:
    change(store, "a", "1")
    store.snapshot("one")
    change(store, "b", "2")
    store.snapshot("two")
    change(store, "c", "3")
    assert store.rollback("one") == ["two"]
    assert not (store.paths.layers / "two").exists()
    assert store.upper_is_empty()
    assert [s["name"] for s in store.snapshots()] == ["one"]
    with pytest.raises(UsageError, match="no snapshot named 'two'"):
        store.rollback("two")


def test_remove_snapshot_refused_while_something_stands_on_it(store: LayerStore) -> None:
    store.snapshot("one")
    store.snapshot("two")
    with pytest.raises(UsageError, match="two stand"):
        store.remove_snapshot("one")
    change(store, "x", "y")
    with pytest.raises(UsageError, match="current changes"):
        store.remove_snapshot("two")
    store.rollback("two")
    store.remove_snapshot("two")
    assert [s["name"] for s in store.snapshots()] == ["one"]
    assert not (store.paths.layers / "two").exists()


def test_snapshot_names_are_checked_and_unique(store: LayerStore) -> None:
    for bad in ("", "../x", "a b", "-x", "x" * 65):
        with pytest.raises(UsageError):
            store.snapshot(bad)
    store.snapshot("ok")
    with pytest.raises(UsageError, match="exists already"):
        store.snapshot("ok")


def test_drop_all_snapshots_returns_to_the_base(store: LayerStore) -> None:
    change(store, "a", "1")
    store.snapshot("one")
    change(store, "b", "2")
    store.drop_all_snapshots()
    assert store.snapshots() == [] and store.upper_is_empty()
    assert store.lower_dirs() == (str(store.paths.base),)


def test_scratch_overlay_is_over_the_base_or_given_lowers(store: LayerStore, tmp_path: Path) -> None:
    store.snapshot("one")
    scratch = store.scratch_overlay("build")
    assert scratch.lowers == (str(store.paths.base),)
    assert Path(scratch.upper).is_dir() and not any(Path(scratch.upper).iterdir())
    other = store.scratch_overlay("build", lowers=(str(tmp_path), str(store.paths.base)))
    assert other.lowers[0] == str(tmp_path)
    store.drop_scratch("build")
    assert not (store.paths.top / "scratch" / "build").exists()


def test_a_snapshot_killed_before_its_record_loses_nothing(store: LayerStore) -> None:
    change(store, "a", "kept")
    store.paths.layers.mkdir()
    store.paths.upper.rename(store.paths.layers / "half")  # the rename happened, the state write did not
    store.ensure_upper()
    assert (store.paths.upper / "a").read_text() == "kept"
    assert not (store.paths.layers / "half").exists()
    store.snapshot("half")
    assert [s["name"] for s in store.snapshots()] == ["half"]
