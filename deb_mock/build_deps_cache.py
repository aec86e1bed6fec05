"""Build-dependency layers: overlay layers of installed build dependencies, cached by what they hold.

The key is a digest of the base's content id plus the planned installs
(names and versions) and any local packages offered: when a rebuild would
install the same set, the layer is mounted instead of running apt again. A
changed set (a new version in the archive, another package) is another key.
Layers are directories renamed from a build's upper: O(1) to save.

Locking, so that nobody ever waits for a build: every layer has a lock file.
A build that mounts a layer holds a shared lock on it for the whole build (a
*lease*), so any number of builds share it. Saving and deleting a layer take
the exclusive lock without waiting: a layer that is being saved is not saved
twice, and a layer in use is not deleted under a running build (its record is
dropped, so it is handed out no more, and the directory goes once unused).
Layers not used for ``max_age_days`` are deleted whenever a new layer is
saved, so a cache whose sets keep changing does not grow for ever.

Aliases spare the resolver: a layer's key is what apt would install, which
takes apt a few seconds to say, but while the package lists stay the same the
build's declarations (build relations, profiles, extra packages, the lists'
date) always resolve to the same set. So the first build with a declaration
records an alias from a digest of it to the layer's key, and the next build
with the same declaration goes straight to the layer without running apt.
A list refresh changes the declaration's digest, not the layer's key: one
resolution then finds the same layer again if the archive did not change.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from deb_mock.config import Config
from deb_mock.digests import file_digest
from deb_mock.fileio import TEMP_INFIX, write_atomic
from deb_mock.layerstore import remove_tree

DAY = 86400
#: bumped when what a layer holds changes form (2: overlay marks in user.* xattrs, for roots in user namespaces)
LAYER_FORMAT = 2
#: the subdirectory of alias files (named by a declaration's digest, holding a layer's key)
ALIASES = "aliases"


@dataclasses.dataclass
class Lease:
    """A layer held in use: its shared lock is kept until :meth:`release`."""

    layer: Path
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@dataclasses.dataclass
class ScrubReport:
    removed: int = 0
    #: layers mounted by running builds: no longer handed out, deleted once unused
    in_use: int = 0


class BuildDepsCache:
    """The build-dependency layers of one config, below ``<cache_topdir>/<config>/build-deps``."""

    def __init__(self, directory: Path, max_age_days: float = 0) -> None:
        self.directory = directory
        #: layers unused for longer are deleted when a new one is saved; 0 keeps them for ever
        self.max_age_days = max_age_days
        #: why the last store() kept nothing, if it could not
        self.refused = ""

    @classmethod
    def for_config(cls, config: Config, kind: str = "build-deps") -> BuildDepsCache:
        """The cache shared by every root of ``config`` (``--uniqueext`` roots included).

        ``kind`` "tool-layers" holds the layers of checkers (lintian) beside, not among, build dependencies.
        """
        return cls(Path(config.cache_topdir) / config.name / kind, config.build_deps_max_age_days)

    def key(self, base_id: str, planned: Sequence[str], extra_debs: Sequence[Path]) -> str:
        """A layer's key (or an alias's): the base's content id, ``planned`` (what apt would install, or a
        build's declarations for an alias) and the content of the local packages offered (or of a source's
        files, for :mod:`deb_mock.source_trees`)."""
        import hashlib  # OpenSSL for the .debs' bytes; a warm start computes no key

        digest = hashlib.sha256(f"format {LAYER_FORMAT}\n{base_id}".encode())
        for line in planned:
            digest.update(line.encode() + b"\n")
        for deb in extra_debs:  # streamed: an orig tarball may be GBs
            digest.update(file_digest(deb).encode())
        return digest.hexdigest()

    # -- paths --------------------------------------------------------------------------

    def _layer(self, key: str) -> Path:
        return self.directory / key

    def _record(self, key: str) -> Path:
        """Written last when a layer is saved, removed first when it goes: a layer is complete with it."""
        return self.directory / f"{key}.json"

    def _lock_path(self, key: str) -> Path:
        return self.directory / f"{key}.lock"

    @property
    def _aliases(self) -> Path:
        return self.directory / ALIASES

    def lookup(self, key: str) -> Path | None:
        """The layer for ``key`` if one was completely saved (no lock taken: see :meth:`acquire`)."""
        layer = self._layer(key)
        return layer if self._record(key).is_file() and layer.is_dir() else None

    # -- locks --------------------------------------------------------------------------

    def _lock(self, key: str, mode: int) -> int | None:
        """An fd holding ``mode`` on the key's lock file; None if ``mode`` has LOCK_NB and it is busy.

        A deleter removes the lock file while holding it exclusively, so after
        locking we check that the file we hold is still the one at the path.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._lock_path(key)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, mode)
            except BlockingIOError:
                os.close(fd)
                return None
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)

    # -- use, save, delete ----------------------------------------------------------------

    def acquire(self, key: str) -> Lease | None:
        """The complete layer for ``key``, held in use until the lease is released; None if there is none.

        Waits only while that very layer is being saved or deleted (seconds).
        """
        if self.lookup(key) is None:
            return None
        fd = self._lock(key, fcntl.LOCK_SH)
        assert fd is not None  # a blocking lock always comes back with one
        layer = self.lookup(key)
        if layer is None:
            os.close(fd)
            return None
        os.utime(self._record(key))  # the last use, which expiry goes by
        return Lease(layer, fd)

    def alias(self, declared: str, key: str) -> None:
        """Record that the declaration digest ``declared`` resolves to the layer ``key`` (best effort:
        a scrub may be emptying the cache meanwhile, and without the alias apt just resolves again)."""
        try:
            self._aliases.mkdir(parents=True, exist_ok=True)
            write_atomic(self._aliases / declared, key)
        except OSError:
            pass

    def acquire_alias(self, declared: str) -> Lease | None:
        """The layer an alias of ``declared`` names, leased; None if there is no alias or no such layer."""
        path = self._aliases / declared
        try:
            key = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        lease = self.acquire(key) if key and "/" not in key else None
        if lease is not None:
            os.utime(path)
        return lease

    def store(self, key: str, upper: Path) -> Lease | None:
        """Move a build's upper into the cache as the layer for ``key``, leased to the caller.

        None when nothing was kept: another build holds or writes that layer
        (it stays theirs) or the upper cannot be renamed (``refused`` says why).
        """
        self.refused = ""
        fd = self._lock(key, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if fd is None:
            return None
        try:
            layer = self._layer(key)
            if self.lookup(key) is not None:
                return None  # a concurrent build saved the same set meanwhile
            if layer.exists():
                remove_tree(layer)  # a writer was killed before it finished, or a scrubbed layer
            try:
                os.rename(upper, layer)
            except OSError as exc:
                self.refused = f"{layer}: {exc.strerror}"  # another file system: no cheap way to keep it
                return None
            os.sync()  # installed with unsafe-io: on disk before the layer is declared complete
            write_atomic(self._record(key), json.dumps({"created": time.time()}))
            fcntl.flock(fd, fcntl.LOCK_SH)  # from writer to user: others may share it now
            lease, fd = Lease(layer, fd), -1
        finally:
            if fd >= 0:
                os.close(fd)
        self.expire(keep=key)
        return lease

    def refusal(self, what: str) -> str:
        """The warning for a ``what`` that store() could not keep (``refused`` says why): the cure is the user's."""
        return f"the {what} cannot be kept ({self.refused}): put cache_topdir on the file system of basedir"

    def _remove_if_unused(self, key: str) -> bool:
        """Delete ``key``'s layer unless a build holds it; its record goes in any case."""
        if not key or "/" in key:
            raise ValueError(f"not a layer key: {key!r}")
        self._record(key).unlink(missing_ok=True)
        fd = self._lock(key, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if fd is None:
            return False
        try:
            remove_tree(self._layer(key))
            for leftover in self.directory.glob(f"{key}.json{TEMP_INFIX}*"):
                leftover.unlink(missing_ok=True)
            self._lock_path(key).unlink(missing_ok=True)
        finally:
            os.close(fd)
        return True

    def _keys(self) -> set[str]:
        if not self.directory.is_dir():
            return set()
        # a hidden name is a remote cache's download or upload in progress (".KEY.pull-PID..."), not a layer:
        # its empty "key" would name the cache directory itself
        return {entry.name.split(".", 1)[0] for entry in self.directory.iterdir()
                if entry.name != ALIASES and not entry.name.startswith(".")}

    def _expire_aliases(self, everything: bool) -> None:
        """Delete aliases unused for max_age_days or naming no complete layer (all of them: ``everything``)."""
        if not self._aliases.is_dir():
            return
        now = time.time()
        for path in self._aliases.iterdir():
            try:
                age = now - path.stat().st_mtime
                if everything:
                    gone = True
                elif "." in path.name:  # a writer's temporary file: an hour old, it was killed
                    gone = age > 3600
                else:
                    expired = bool(self.max_age_days) and age > self.max_age_days * DAY
                    gone = expired or self.lookup(path.read_text(encoding="utf-8").strip()) is None
            except FileNotFoundError:
                continue
            if gone:
                path.unlink(missing_ok=True)

    def scrub(self) -> ScrubReport:
        """Delete every layer; one in use by a running build is dropped from the cache and deleted later."""
        report = ScrubReport()
        self._expire_aliases(everything=True)
        with contextlib.suppress(OSError):  # absent, or a concurrent build just wrote an alias
            self._aliases.rmdir()
        for key in sorted(self._keys()):
            if self._remove_if_unused(key):
                report.removed += 1
            else:
                report.in_use += 1
        if report.in_use == 0 and self.directory.is_dir() and not any(self.directory.iterdir()):
            self.directory.rmdir()
        return report

    def trim(self, count: int, keep: str = "") -> int:
        """Delete the layers beyond the ``count`` most recently used ones, ``keep`` counted among them and
        never deleted, nor a layer a build holds; returns how many went."""
        used: list[tuple[float, str]] = []
        for key in self._keys() - {keep}:
            with contextlib.suppress(FileNotFoundError):  # a leftover without a record: expire()'s
                used.append((self._record(key).stat().st_mtime, key))
        return sum(self._remove_if_unused(key) for _, key in sorted(used, reverse=True)[max(count - 1, 0):])

    def expire(self, keep: str = "") -> int:
        """Delete layers unused for ``max_age_days`` and leftovers without a record (killed writers, layers
        scrubbed while in use), except ``keep`` and those a build holds or writes; returns how many went."""
        now = time.time()
        removed = 0
        for key in sorted(self._keys() - {keep}):
            record = self._record(key)
            try:
                last_use = record.stat().st_mtime
            except FileNotFoundError:
                last_use = None
            if last_use is not None and (not self.max_age_days or now - last_use <= self.max_age_days * DAY):
                continue
            removed += self._remove_if_unused(key)
        self._expire_aliases(everything=False)
        return removed
