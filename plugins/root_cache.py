"""root_cache: keep every prepared base as a zstd tarball, restore it instead of bootstrapping.

The cache is keyed by a digest of every config value that shapes the base
(suite, architecture, variant, components, include list, mirror, keyrings …),
so a changed value means a new cache, never a stale one. A tarball is
written atomically (temporary file, fsync, rename) with its sha256 beside it;
a truncated or corrupted tarball is detected by that digest, reported,
discarded and rebuilt. The lock is held only while a tarball is written or
read, never for a whole build.

With ``remote_cache`` (deb_mock.remote_cache), a local miss first asks the
registry, and a builder allowed to push sends each tarball it saves: the
second builder of a farm restores what the first one bootstrapped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from deb_mock import hookimpl, tarballs
from deb_mock.bootstrap import bootstrap_digest
from deb_mock.digests import file_digest
from deb_mock.errors import RootError
from deb_mock.fileio import TEMP_INFIX, temp_name, write_atomic
from deb_mock.remote_cache import RemoteCacheUnavailable, registry_for, tag_for

if TYPE_CHECKING:
    from deb_mock.services import RootServices

PLUGIN_NAME = "root_cache"
SUFFIX = tarballs.SUFFIX
tar_create_command = tarballs.create_command
tar_extract_command = tarballs.extract_command


@dataclasses.dataclass(frozen=True)
class Settings:
    """The ``plugins.root_cache`` section."""

    enabled: bool = True
    #: a cache older than this is rebuilt (its package lists age with it)
    max_age_days: int = 15
    compression: Literal["zstd", "gzip", "none"] = "zstd"
    #: where the tarballs live; empty: <cache_topdir>/<config name>/root_cache
    dir: str | None = None


@hookimpl
def debmock_config_sections() -> dict[str, type]:
    return {PLUGIN_NAME: Settings}


@hookimpl
def debmock_scrub_kinds() -> list[str]:
    return ["root-cache", "cache"]


def cache_dir(root: RootServices) -> Path:
    settings: Settings = root.config.plugin(PLUGIN_NAME)
    return Path(settings.dir) if settings.dir else Path(root.config.cache_topdir) / root.config.name / "root_cache"


@contextlib.contextmanager
def cache_lock(root: RootServices, path: Path, exclusive: bool) -> Iterator[int]:
    """flock on the cache entry's lock file, saying so when it has to wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    try:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            root.console.info("waiting for the root cache lock (another run is writing it)")
            fcntl.flock(fd, mode)
        yield fd
    finally:
        os.close(fd)


def _run_tar(root: RootServices, argv: list[str], stage: str) -> None:
    with root.logs.sink(stage) as sink:
        returncode = root.run_on_host(argv, sink)
    if returncode != 0:
        raise RootError(f"{stage}: tar failed with exit code {returncode}:\n" + "\n".join(sink.tail[-5:]))


def _entry(root: RootServices) -> tuple[Path, Path, Path, str]:
    settings: Settings = root.config.plugin(PLUGIN_NAME)
    key = bootstrap_digest(root.config)
    directory = cache_dir(root)
    tarball = directory / f"{key}{SUFFIX[settings.compression]}"
    return tarball, tarball.with_name(f"{tarball.name}.json"), directory / f"{key}.lock", settings.compression


@hookimpl
def debmock_root_restore(root: RootServices, target: Path) -> str | None:
    settings: Settings = root.config.plugin(PLUGIN_NAME)
    tarball, meta_path, lock, compression = _entry(root)
    verified: str | None = ""  # the sha256 a pull has just checked the tarball against: no need to read it again
    if not meta_path.exists():
        verified = _pull(root, tarball, meta_path, lock, compression)
        if verified is None:
            return None
    with cache_lock(root, lock, exclusive=False) as fd:
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        if time.time() - float(meta.get("created", 0)) > settings.max_age_days * 86400:
            root.console.info("the root cache is older than max_age_days: bootstrapping a new base")
            _discard(fd, tarball, meta_path)
            return None
        intact = tarball.is_file() and tarball.stat().st_size == meta.get("size")
        expected = meta.get("sha256")
        if not intact or (verified != expected and file_digest(tarball) != expected):
            root.console.warn(f"root cache {tarball} is truncated or corrupted (its sha256 does not match): "
                              "discarded, bootstrapping a new base")
            _discard(fd, tarball, meta_path)
            return None
        _run_tar(root, tar_extract_command(tarball, target, compression), "root-cache-restore")
    root.logs.write_root_log(f"deb-mock: restored the base from the root cache {tarball}")
    root.plugin_state[PLUGIN_NAME] = {"lists_updated": float(meta["created"])}
    return str(meta["sha256"])


def _discard(fd: int, tarball: Path, meta_path: Path) -> None:
    """Delete a cache entry; the shared lock held on ``fd`` is converted to an exclusive one.

    (A second flock on another descriptor of the same file would wait for ourselves.)
    """
    fcntl.flock(fd, fcntl.LOCK_EX)
    for path in (meta_path, tarball):
        path.unlink(missing_ok=True)


def _remote_tag(root: RootServices, compression: str) -> str:
    """The registry's tag of this config's root cache: keyed as the local tarball is, with its compression."""
    return tag_for("root", f"{bootstrap_digest(root.config)}-{compression}")


def _remove_stale_temporaries(tarball: Path) -> None:
    """Temporary files of the entry left by a killed writer or puller: the exclusive lock says nobody works now."""
    for stale in tarball.parent.glob(f"{tarball.name.split('.', 1)[0]}*{TEMP_INFIX}*"):
        stale.unlink()


def _pull(root: RootServices, tarball: Path, meta_path: Path, lock: Path, compression: str) -> str | None:
    """On a local miss: the entry from the registry into the local cache (digest checked, atomic).

    Returns the sha256 the tarball was verified against while it streamed in
    ("" when a concurrent run made the entry meanwhile), None if there is none.
    """
    registry = registry_for(root.config, "root")
    if registry is None:
        return None
    tag = _remote_tag(root, compression)
    with cache_lock(root, lock, exclusive=True), root.logs.stage("remote-cache-pull"):
        if meta_path.exists():
            return ""  # a concurrent run of the same config pulled or made it meanwhile
        tarball.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(tarball)
        try:
            fetched = registry.fetch(tag, tarball)
        except RemoteCacheUnavailable as exc:
            root.console.warn(f"remote cache: {exc}; bootstrapping locally")
            return None
        if fetched is None:
            root.logs.write_root_log(f"deb-mock: {registry.location} has no {tag}")
            return None
        record = fetched.record
        if record.get("sha256") != fetched.sha256 or record.get("key") != bootstrap_digest(root.config):
            tarball.unlink(missing_ok=True)
            root.console.warn(f"remote cache: {tag} does not describe its tarball; bootstrapping locally")
            return None
        write_atomic(meta_path, json.dumps({**record, "size": tarball.stat().st_size}, indent=2))
    root.result.extra.setdefault("remote_cache", {})["root"] = {"pulled": tag, "bytes": tarball.stat().st_size}
    root.logs.write_root_log(f"deb-mock: pulled the root cache {tag} from {registry.location}")
    return fetched.sha256


def _push(root: RootServices, tarball: Path, meta: dict[str, object], digest: str, compression: str) -> None:
    """After a local save: the entry to the registry when this builder may push (a failure is a warning)."""
    registry = registry_for(root.config, "root")
    if registry is None or not root.config.remote_cache.push:
        return
    tag = _remote_tag(root, compression)
    with root.logs.stage("remote-cache-push"):
        try:
            wrote = registry.publish(tag, meta, tarball, digest)
        except RemoteCacheUnavailable as exc:
            root.console.warn(f"remote cache: pushing {tag} failed: {exc}")
            return
    root.result.extra.setdefault("remote_cache", {})["root"] = {
        "pushed": tag if wrote else None, "bytes": tarball.stat().st_size if wrote else 0}


@hookimpl
def debmock_root_initialized(root: RootServices, restored: bool) -> None:
    if restored:
        lists = root.plugin_state.get(PLUGIN_NAME, {}).get("lists_updated")
        if lists:
            root.store.update_base_info(lists_updated=lists)
        return
    if root.config.offline:
        return  # prepared without package lists: not a base to hand to online runs
    try:
        _save(root)
    except (OSError, RootError) as exc:
        root.console.warn(f"the root cache could not be written ({exc}); the root itself is ready")


def _save(root: RootServices) -> None:
    tarball, meta_path, lock, compression = _entry(root)
    with cache_lock(root, lock, exclusive=True), root.logs.stage("root-cache-save"):
        if meta_path.exists() and tarball.exists():
            return  # a concurrent run of the same config wrote it meanwhile
        _remove_stale_temporaries(tarball)
        tmp = temp_name(tarball)
        try:
            _run_tar(root, tar_create_command(root.paths.base, tmp, compression), "root-cache-save")
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
            digest = file_digest(tmp)
            os.replace(tmp, tarball)
        finally:
            tmp.unlink(missing_ok=True)
        meta = {"sha256": digest, "size": tarball.stat().st_size, "created": time.time(),
                "key": bootstrap_digest(root.config), "suite": root.config.suite,
                "architecture": root.config.architecture}
        write_atomic(meta_path, json.dumps(meta, indent=2))
    # the lists stamp restored roots get (the record's time): builds here and on builders restoring this
    # cache declare the same lists, so they share build-deps aliases, remote ones included
    root.store.update_base_info(content_id=digest, lists_updated=meta["created"])
    _push(root, tarball, meta, digest, compression)


@hookimpl
def debmock_scrub(root: RootServices, kinds: frozenset[str]) -> None:
    if not kinds & {"root-cache", "cache", "all"}:
        return
    directory = cache_dir(root)
    if not directory.is_dir():
        return
    for meta in directory.glob("*.tar*.json"):
        key = meta.name.split(".", 1)[0]
        with cache_lock(root, directory / f"{key}.lock", exclusive=True):
            for path in (meta, meta.with_name(meta.name.removesuffix(".json"))):
                path.unlink(missing_ok=True)
