"""Unpacked source trees, cached as overlay layers: a rebuild of the same source skips ``dpkg-source -x``.

``dpkg-source -x`` gives the same tree every time for the same files and the
same dpkg-source, yet every builder runs it before every build: 0.15-0.5 s for
hello, minutes for the biggest sources. A clean build over a cached build-deps
layer therefore unpacks into a throw-away upper of its own, keeps that upper
as a layer (a rename into ``<cache_topdir>/<config>/source-trees``) and builds
in a fresh upper over it; the next build of the same source mounts the layer
and runs no unpack at all. What the build changes in the tree is copied up
into its own upper, so the layer stays as dpkg-source left it.

The key is the base's content id, the build-deps layer below the tree (its
dpkg-dev may be newer than the base's), the unpack command and the bytes of
every file of the source package. The layers share the build-deps layers'
leases, expiry and scrub (:mod:`deb_mock.build_deps_cache`), and only the
:data:`KEPT_SOURCE_TREES` most recently used trees are kept: a farm that builds each
source once must not fill its disk with trees nobody builds again.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from deb_mock.build_deps_cache import BuildDepsCache
from deb_mock.config import Config

#: the cache's subdirectory of ``<cache_topdir>/<config>``
KIND = "source-trees"
#: how many unpacked trees a config keeps (the least recently used go first)
KEPT_SOURCE_TREES = 8


def source_tree_cache(config: Config) -> BuildDepsCache:
    """The unpacked trees of ``config``, shared by its roots (``--uniqueext`` ones included)."""
    return BuildDepsCache.for_config(config, KIND)


def source_tree_key(cache: BuildDepsCache, base_id: str, deps_layer: Path, unpack: Sequence[str],
             files: Sequence[Path]) -> str:
    """The key of the tree that ``unpack`` makes of ``files`` over ``deps_layer`` and the base."""
    return cache.key(base_id, ["source tree", f"over {deps_layer.name}", *unpack], files)
