"""Build-dependency layers through the remote cache: the first builder installs, the others pull.

An entry is tagged by the build's *declaration* digest (what the local
aliases are keyed by: the base's content id, the lists, the build
relations, profiles and packages), so a builder whose local cache has no
alias goes straight to the registry, without asking apt, and gets the layer
with its key (the record). Builders share declarations when they share the
base, which the remote root cache gives them. A pulled layer is unpacked by
the host's tar next to the local cache and renamed into it as a layer built
here would be (BuildDepsCache.store), with its alias.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from deb_mock import tarballs
from deb_mock.build_deps_cache import LAYER_FORMAT, BuildDepsCache, Lease
from deb_mock.digests import file_digest
from deb_mock.layerstore import remove_tree
from deb_mock.remote_cache import Registry, RemoteCacheUnavailable, registry_for, tag_for

if TYPE_CHECKING:
    from deb_mock.services import RootServices

COMPRESSION = "zstd"


class RemoteBuildDeps:
    """The build-deps layers of one config in the registry (None from :meth:`of` when there is none)."""

    def __init__(self, services: RootServices, cache: BuildDepsCache, registry: Registry) -> None:
        self.services = services
        self.cache = cache
        self.registry = registry

    @classmethod
    def of(cls, services: RootServices, cache: BuildDepsCache) -> RemoteBuildDeps | None:
        registry = registry_for(services.config, "build-deps")
        return None if registry is None else cls(services, cache, registry)

    def _report(self, **what: object) -> None:
        self.services.result.extra.setdefault("remote_cache", {})["build-deps"] = what

    def pull(self, declared: str) -> Lease | None:
        """The layer the registry holds for this declaration, in the local cache and leased; None if none."""
        tag = tag_for("deps", declared)
        directory = self.cache.directory
        directory.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(directory)
        tarball = directory / f".{declared}.pull-{os.getpid()}{tarballs.SUFFIX[COMPRESSION]}"
        staging = directory / f".{declared}.unpack-{os.getpid()}"
        services = self.services
        try:
            with services.logs.stage("remote-cache-pull"):
                fetched = self.registry.fetch(tag, tarball)
                if fetched is None:
                    return None
                record = fetched.record
                key = str(record.get("key", ""))
                if not re.fullmatch(r"[0-9a-f]{64}", key) or record.get("format") != LAYER_FORMAT:
                    raise RemoteCacheUnavailable(f"{tag} names no layer of this deb-mock (format, key)")
                staging.mkdir(mode=0o755)
                self._tar(tarballs.extract_command(tarball, staging, COMPRESSION), "remote-cache-unpack")
                size = tarball.stat().st_size
                tarball.unlink()
                lease = self.cache.store(key, staging) or self.cache.acquire(key)
        except RemoteCacheUnavailable as exc:
            services.console.warn(f"remote cache: {exc}; installing the build dependencies here")
            return None
        finally:
            tarball.unlink(missing_ok=True)
            if staging.exists():
                remove_tree(staging)
        if lease is not None:
            self.cache.alias(declared, key)
            services.logs.write_root_log(f"deb-mock: build-deps layer {key} pulled from {self.registry.location}")
            self._report(pulled=tag, bytes=size)
        return lease

    def push(self, declared: str, key: str, layer: Path) -> None:
        """Send a layer this build saved (a failure is a warning: the build goes on)."""
        if not self.services.config.remote_cache.push:
            return
        tag = tag_for("deps", declared)
        tarball = self.cache.directory / f".{key}.push-{os.getpid()}{tarballs.SUFFIX[COMPRESSION]}"
        try:
            with self.services.logs.stage("remote-cache-push"):
                if self.registry.manifest(tag) is not None:
                    return  # another builder was first
                self._tar(tarballs.create_command(layer, tarball, COMPRESSION), "remote-cache-pack")
                record = {"key": key, "format": LAYER_FORMAT, "created": time.time()}
                wrote = self.registry.publish(tag, record, tarball, file_digest(tarball))
                self._report(pushed=tag if wrote else None, bytes=tarball.stat().st_size if wrote else 0)
        except RemoteCacheUnavailable as exc:
            self.services.console.warn(f"remote cache: pushing {tag} failed: {exc}")
        finally:
            tarball.unlink(missing_ok=True)

    def _tar(self, argv: list[str], stage: str) -> None:
        with self.services.logs.sink(stage) as sink:
            returncode = self.services.run_on_host(argv, sink)
        if returncode != 0:
            raise RemoteCacheUnavailable(f"tar failed ({returncode}): " + " ".join(sink.tail[-3:]))


def _remove_leftovers(directory: Path) -> None:
    """Pulls, unpacks and pushes of killed runs (``.NAME.pull-PID…``): their process is gone."""
    for leftover in directory.glob(".*.*-*"):
        match = re.fullmatch(r"\.[0-9a-f]+\.(?:pull|unpack|push)-(\d+)(?:\.tar\.\w+)?(?:\.tmp-\d+)?", leftover.name)
        if not match or os.path.exists(f"/proc/{match.group(1)}"):
            continue
        if leftover.is_dir() and not leftover.is_symlink():
            remove_tree(leftover)
        else:
            leftover.unlink(missing_ok=True)
