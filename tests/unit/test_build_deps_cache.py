"""The build-deps layer cache: keys, leases, saving, scrubbing and expiry (real directories and flocks)."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from deb_mock.build_deps_cache import DAY, BuildDepsCache


def _upper(tmp_path: Path, name: str) -> Path:
    upper = tmp_path / name
    (upper / "usr" / "bin").mkdir(parents=True)
    (upper / "usr" / "bin" / "tool").write_text("x")
    return upper


def _hold(cache: BuildDepsCache, key: str, mode: int) -> int:
    """Another build's lock (flock conflicts between two open files even within one process)."""
    fd = os.open(cache.directory / f"{key}.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, mode)
    return fd


def test_key_changes_with_base_set_and_local_packages(tmp_path: Path) -> None:
    cache = BuildDepsCache(tmp_path / "cache")
    key = cache.key("base1", ["a 1", "b 2"], [])
    assert key == cache.key("base1", ["a 1", "b 2"], [])
    assert key != cache.key("base2", ["a 1", "b 2"], [])
    assert key != cache.key("base1", ["a 1", "b 3"], [])
    deb = tmp_path / "x.deb"
    deb.write_bytes(b"one")
    with_deb = cache.key("base1", ["a 1", "b 2"], [deb])
    deb.write_bytes(b"two")
    assert with_deb != cache.key("base1", ["a 1", "b 2"], [deb]) != key


def test_store_renames_the_upper_and_leases_it(tmp_path: Path) -> None:
    cache = BuildDepsCache(tmp_path / "cache")
    assert cache.acquire("k") is None
    upper = _upper(tmp_path, "upper")
    inode = upper.stat().st_ino
    lease = cache.store("k", upper)
    assert lease is not None and lease.layer.stat().st_ino == inode and not upper.exists()
    assert cache.lookup("k") == lease.layer
    other = cache.acquire("k")  # shared: a second build uses it at the same time
    assert other is not None and other.layer == lease.layer
    second = _upper(tmp_path, "upper2")
    assert cache.store("k", second) is None and second.exists()  # the first writer's layer stays
    lease.release()
    other.release()
    lease.release()  # twice is harmless


def test_a_half_written_layer_is_ignored_and_replaced(tmp_path: Path) -> None:
    cache = BuildDepsCache(tmp_path / "cache")
    (tmp_path / "cache" / "k").mkdir(parents=True)  # renamed, but killed before its record
    assert cache.lookup("k") is None and cache.acquire("k") is None
    lease = cache.store("k", _upper(tmp_path, "upper"))
    assert lease is not None and (lease.layer / "usr" / "bin" / "tool").is_file()
    lease.release()


def test_store_never_waits_for_a_writer(tmp_path: Path) -> None:
    cache = BuildDepsCache(tmp_path / "cache")
    cache.directory.mkdir(parents=True)
    writer = _hold(cache, "k", fcntl.LOCK_EX)
    started = time.monotonic()
    upper = _upper(tmp_path, "upper")
    assert cache.store("k", upper) is None and upper.exists() and not cache.refused
    assert time.monotonic() - started < 1
    os.close(writer)


def test_scrub_keeps_a_layer_in_use_but_stops_handing_it_out(tmp_path: Path) -> None:
    cache = BuildDepsCache(tmp_path / "cache")
    used = cache.store("used", _upper(tmp_path, "u1"))
    idle = cache.store("idle", _upper(tmp_path, "u2"))
    assert used is not None and idle is not None
    idle.release()
    report = cache.scrub()
    assert (report.removed, report.in_use) == (1, 1)
    assert not (cache.directory / "idle").exists() and not (cache.directory / "idle.lock").exists()
    assert (used.layer / "usr" / "bin" / "tool").is_file()  # the running build's lower is intact
    assert cache.lookup("used") is None and cache.acquire("used") is None
    used.release()
    report = cache.scrub()
    assert (report.removed, report.in_use) == (1, 0)
    assert not cache.directory.exists()


def test_expiry_removes_unused_layers_and_leftovers_but_not_busy_ones(tmp_path: Path) -> None:
    cache = BuildDepsCache(tmp_path / "cache", max_age_days=15)
    old = cache.store("old", _upper(tmp_path, "u1"))
    busy_old = cache.store("busy", _upper(tmp_path, "u2"))
    recent = cache.store("recent", _upper(tmp_path, "u3"))
    assert old is not None and busy_old is not None and recent is not None
    old.release()
    recent.release()
    month_ago = time.time() - 30 * DAY
    for key in ("old", "busy"):
        os.utime(cache.directory / f"{key}.json", (month_ago, month_ago))
    (cache.directory / "killed").mkdir()  # a writer killed between rename and record
    new = cache.store("new", _upper(tmp_path, "u4"))  # saving a layer sweeps the others
    assert new is not None
    names = sorted(p.name for p in cache.directory.iterdir() if p.is_dir())
    assert names == ["busy", "new", "recent"]
    assert cache.lookup("busy") is None  # expired: no longer handed out, deleted once released
    busy_old.release()
    assert cache.expire() == 1 and not (cache.directory / "busy").exists()
    new.release()


def test_using_a_layer_counts_as_use_for_expiry(tmp_path: Path) -> None:
    cache = BuildDepsCache(tmp_path / "cache", max_age_days=15)
    lease = cache.store("k", _upper(tmp_path, "u"))
    assert lease is not None
    lease.release()
    month_ago = time.time() - 30 * DAY
    os.utime(cache.directory / "k.json", (month_ago, month_ago))
    again = cache.acquire("k")
    assert again is not None
    again.release()
    assert cache.expire() == 0 and cache.lookup("k") is not None
    assert BuildDepsCache(cache.directory, max_age_days=0).expire() == 0  # 0: kept for ever


def test_a_lock_file_replaced_by_a_deleter_is_locked_anew(tmp_path: Path) -> None:
    cache = BuildDepsCache(tmp_path / "cache")
    lease = cache.store("k", _upper(tmp_path, "u"))
    assert lease is not None
    lease.release()
    # a deleter removed the lock file (and the layer) while we were about to lock it
    stale = os.open(cache.directory / "k.lock", os.O_RDWR)
    assert cache.scrub().removed == 1
    fcntl.flock(stale, fcntl.LOCK_EX)  # the old, unlinked lock does not block the new one
    fresh = cache.store("k", _upper(tmp_path, "u2"))
    assert fresh is not None and (cache.directory / "k.lock").exists()
    fresh.release()
    os.close(stale)


def test_an_alias_leads_to_its_layer_and_dies_with_it(tmp_path: Path) -> None:
    cache = BuildDepsCache(tmp_path / "cache", max_age_days=15)
    assert cache.acquire_alias("declared") is None
    lease = cache.store("layer", _upper(tmp_path, "u"))
    assert lease is not None
    cache.alias("declared", "layer")
    lease.release()
    via_alias = cache.acquire_alias("declared")
    assert via_alias is not None and via_alias.layer == cache.directory / "layer"
    via_alias.release()
    assert cache.scrub().removed == 1
    assert cache.acquire_alias("declared") is None and not cache.directory.exists()


def test_aliases_expire_with_age_and_with_their_layer(tmp_path: Path) -> None:
    cache = BuildDepsCache(tmp_path / "cache", max_age_days=15)
    lease = cache.store("layer", _upper(tmp_path, "u"))
    assert lease is not None
    lease.release()
    cache.alias("recent", "layer")
    cache.alias("old", "layer")
    cache.alias("dangling", "gone")
    month_ago = time.time() - 30 * DAY
    os.utime(cache.directory / "aliases" / "old", (month_ago, month_ago))
    cache.expire()
    assert sorted(p.name for p in (cache.directory / "aliases").iterdir()) == ["recent"]
    # an alias naming anything but a key is not followed
    (cache.directory / "aliases" / "odd").write_text("../../etc")
    assert cache.acquire_alias("odd") is None


def test_trim_keeps_the_most_recently_used_and_those_in_use(tmp_path: Path) -> None:
    """The unpacked source trees' bound (deb_mock.source_trees): the least recently used go first."""
    cache = BuildDepsCache(tmp_path / "cache")
    for age, key in enumerate(("newest", "held", "older", "oldest")):
        lease = cache.store(key, _upper(tmp_path, f"upper-{key}"))
        assert lease is not None
        lease.release()
        stamp = time.time() - 60 * (age + 1)
        os.utime(cache.directory / f"{key}.json", (stamp, stamp))
    held = cache.acquire("held")
    assert held is not None
    os.utime(cache.directory / "held.json", (time.time() - 600, time.time() - 600))  # used long ago, held now
    fresh = cache.store("fresh", _upper(tmp_path, "upper-fresh"))
    assert fresh is not None
    # three kept: fresh, newest, older; oldest goes, and held (the least recently used) is in use: its record
    # goes (it is handed out no more), its directory once unused
    assert cache.trim(3, keep="fresh") == 1
    assert cache.lookup("fresh") and cache.lookup("newest") and cache.lookup("older")
    assert not (cache.directory / "oldest").exists()
    assert cache.lookup("held") is None and (cache.directory / "held").is_dir()
    held.release()
    fresh.release()


def test_a_remote_caches_transfer_in_progress_is_no_layer(tmp_path: Path) -> None:
    """A pull's or push's hidden temporary file (".KEY.pull-PID.tar.zst") once read as the key "", whose
    expiry deleted the whole cache directory, layers in use included."""
    cache = BuildDepsCache(tmp_path / "cache", max_age_days=1)
    kept = cache.store("a" * 64, _upper(tmp_path, "upper-a"))
    assert kept is not None
    (cache.directory / f".{'b' * 64}.pull-123.tar.zst").write_bytes(b"downloading")
    second = cache.store("c" * 64, _upper(tmp_path, "upper-c"))  # saving expires what is old or incomplete
    assert second is not None
    assert cache.lookup("a" * 64) and cache.lookup("c" * 64)
    assert (cache.directory / f".{'b' * 64}.pull-123.tar.zst").is_file()
    kept.release()
    second.release()
