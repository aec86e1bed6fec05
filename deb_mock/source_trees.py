"""Unpacked source trees, kept in a cache: a rebuild of the same source skips ``dpkg-source -x``.

Every builder runs ``dpkg-source -x`` before every build: 0.15-0.5 s for
hello here, minutes for the biggest sources (most of it decompression and
perl). Its result depends only on the source's files, on dpkg-source (the
base's or the build-deps layer's) and on the environment the config gives it
(``DEB_VENDOR`` picks a vendor's patch series), so after a clean build over
a cached build-deps layer has unpacked its source, a copy of the build
directory's top goes into ``<cache_topdir>/<config>/source-trees/<key>``; the
next build of the same files copies that tree into its own writable layer
(``cp -a`` as the build user: no decompression, no perl) instead of
unpacking. The tree is copied, not mounted as a lower layer: overlayfs in a
user namespace cannot rename a directory that comes from a lower layer
(EXDEV), and a build may rename its source's directories.

Both copies run in the root's sandbox (the tree is the source's, untrusted):
out through a staging directory where what root in the root writes gets
unprivileged host ids, in through a read-only bind. The host only renames the
staging directory into the cache and, later, deletes it. The trees share the
build-deps layers' leases, expiry and scrub (:mod:`deb_mock.build_deps_cache`),
and only the ``source_trees_kept`` (8) most recently used are kept: a farm
that builds each source once must not fill its disk with trees nobody builds
again (it sets 0, and saves the copy too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from deb_mock.build_commands import BUILD_TOP
from deb_mock.build_deps_cache import BuildDepsCache
from deb_mock.config import Config
from deb_mock.sandbox.spec import RUN_DIR, Bind, Mount, with_run_dir

#: the cache's subdirectory of ``<cache_topdir>/<config>``
KIND = "source-trees"
#: where a kept tree appears (read-only) to the copy into a build's root
TREE_IN = f"{RUN_DIR}/tree"
#: where the copy out of a build's root writes the tree to keep
TREE_OUT = f"{RUN_DIR}/tree-out"


def tree_cache(config: Config) -> BuildDepsCache:
    """The unpacked trees of ``config``, shared by its roots (``--uniqueext`` ones included)."""
    return BuildDepsCache.for_config(config, KIND)


def tree_key(cache: BuildDepsCache, base_id: str, deps_layer: Path, unpack: Sequence[str],
             environment: Mapping[str, str], files: Sequence[Path]) -> str:
    """The key of the tree that ``unpack`` makes of ``files`` with ``environment`` (the config's, which
    may set DEB_VENDOR or TAR_OPTIONS) over ``deps_layer`` and the base."""
    return cache.key(base_id, ["source tree", f"over {deps_layer.name}", *unpack,
                               *(f"environment {name}={value}" for name, value in sorted(environment.items()))],
                     files)


def copy_out_command() -> list[str]:
    """As root in the root: the unpacked build directory's top, as it is, into TREE_OUT."""
    return ["cp", "-a", "--", f"{BUILD_TOP}/.", f"{TREE_OUT}/"]


def copy_in(tree: Path) -> tuple[list[str], list[Mount]]:
    """As the build user: the kept ``tree`` (read-only at TREE_IN) into the fresh build directory's top.

    The bind is not idmapped: the tree's files have the root's unprivileged host ids, which the root's user
    namespace shows as the build user's.
    """
    argv = ["/bin/sh", "-c", 'set -e; umask 022; mkdir -p "$2"; exec cp -a -- "$1/." "$2/"', "sh", TREE_IN,
            BUILD_TOP]
    return argv, with_run_dir(Bind(str(tree), TREE_IN, idmap=False))
