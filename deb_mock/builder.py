"""Run package builds in a root: build dependencies, unpack, dpkg-buildpackage, results.

A clean build (the default) runs in a throw-away overlay upper over the
root's base, so the root itself is untouched and the next build starts clean
at no cost; ``-n`` builds in the root's persistent state instead. Every step
is a separate sandbox entry on the same upper: apt steps get the network
(unless offline), the build itself never does unless asked.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from deb_mock import apt, build
from deb_mock.build import BUILD_TOP, EXTRA_REPO, RESULT_MOUNT, SOURCE_MOUNT, BuildOptions
from deb_mock.depslayers import BuildDepsCache, Lease
from deb_mock.errors import BuildError, ChainPartial, DebMockError, PackageError, RootError, UsageError
from deb_mock.result import Artifact
from deb_mock.sandbox.spec import Bind, Mount, RootFs, Tmpfs
from deb_mock.source import SourcePackage, read_dsc, verify_signature

if TYPE_CHECKING:
    from deb_mock.root import Root

RUN_DIR = "/run/deb-mock"
EXTRA_MOUNT = "/run/deb-mock/extra"


@dataclasses.dataclass
class BuildContext:
    """One package build, as the pre/post build hooks see it."""

    source: SourcePackage
    options: BuildOptions
    #: the root the build runs in (a scratch overlay unless -n)
    root_fs: RootFs
    #: the unpacked source inside the root
    build_dir: str
    resultdir: Path
    success: bool = False
    artifacts: list[Artifact] = dataclasses.field(default_factory=list)
    #: the build-deps layer mounted under the build, held in use until the build ends
    deps_lease: Lease | None = None


class PackageBuilder:
    """Builds source packages in one root with one set of options."""

    def __init__(self, root: Root, options: BuildOptions) -> None:
        self.root = root
        self.options = options

    # -- entry points ---------------------------------------------------------------

    def build_all(self, sources: Sequence[SourcePackage], *, chain: bool, keep_going: bool) -> list[BuildContext]:
        """Build ``sources`` in order; with ``chain`` each result is offered to the next."""
        results: list[BuildContext] = []
        failures: list[str] = []
        chain_dir = self.root.paths.top / "chain-repo"
        if chain_dir.exists():
            shutil.rmtree(chain_dir)
        for source in sources:
            resultdir = self.root.resultdir if len(sources) == 1 else (
                self.root.resultdir / f"{source.name}_{source.version.split(':', 1)[-1]}")
            options = self.options
            if chain and chain_dir.exists():
                options = dataclasses.replace(options, extra_packages=(*options.extra_packages, chain_dir))
            try:
                context = PackageBuilder(self.root, options).build(source, resultdir)
            except DebMockError as exc:
                if not keep_going or len(sources) == 1:
                    raise
                failures.append(f"{source.name} {source.version}: {exc.message.splitlines()[0]}")
                self.root.console.error(f"{source.name} {source.version} failed: {exc.message.splitlines()[0]}")
                continue
            results.append(context)
            if chain:
                chain_dir.mkdir(exist_ok=True)
                for artifact in context.artifacts:
                    if artifact.path.endswith(".deb"):
                        shutil.copy2(artifact.path, chain_dir)
        if failures:
            raise ChainPartial(f"built {len(results)} of {len(sources)} packages; failed:\n" + "\n".join(failures))
        return results

    def build(self, source: SourcePackage, resultdir: Path) -> BuildContext:
        """Build one checked source package; results and build.log go to ``resultdir``."""
        root = self.root
        if root.config.source_keyrings:
            root.logs.write_root_log(verify_signature(source, root.config.source_keyrings))
        root.require_initialized()
        resultdir.mkdir(parents=True, exist_ok=True)
        root.store.remove_leftovers()
        root_fs = root.store.overlay() if self.options.no_clean else root.new_scratch("build")
        context = BuildContext(source, self.options, root_fs, f"{BUILD_TOP}/{source.build_dir_name}", resultdir)
        try:
            with root.logs.stage("build-deps"):
                self._install_build_deps(context)
            root.write_installed_packages(context.root_fs, resultdir)
            with root.logs.stage("unpack"):
                self._unpack(context)
            root.hook.debmock_pre_build(root=root, build=context)
            with root.logs.stage("build"):
                returncode = self._dpkg_buildpackage(context)
            context.success = returncode == 0
            if context.success:
                with root.logs.stage("results"):
                    self._collect(context)
            root.hook.debmock_post_build(root=root, build=context)
            if not context.success:
                tail = (resultdir / "build.log").read_text(encoding="utf-8", errors="replace").splitlines()[-25:]
                raise BuildError(f"{source.name} {source.version} failed to build "
                                 f"(dpkg-buildpackage exit code {returncode}); the end of build.log:\n"
                                 + "\n".join(tail), hint=f"the whole log is {resultdir / 'build.log'}")
        finally:
            if not self.options.no_clean:
                root.discard_scratch("build")
            if context.deps_lease is not None:
                context.deps_lease.release()
        if self.options.postinstall:
            debs = [a.path for a in context.artifacts if a.path.endswith(".deb") and "-dbgsym_" not in a.path]
            root.install(debs)
        return context

    # -- steps ------------------------------------------------------------------------

    def _source_mounts(self, source: SourcePackage) -> list[Mount]:
        mounts: list[Mount] = [Tmpfs(RUN_DIR, size="1M")]
        mounts += [Bind(str(f), f"{SOURCE_MOUNT}/{f.name}") for f in source.all_files]
        return mounts

    def _install_build_deps(self, context: BuildContext) -> None:
        root, root_fs = self.root, context.root_fs
        cache = None if self.options.no_clean else BuildDepsCache.of(root)
        if cache is None:
            if root.lists_are_stale():
                root.apt_run(apt.update_command(), "apt-update", root_fs=root_fs)
        elif root.lists_are_stale(scratch=True):
            root.refresh_base_lists()  # once, for this build and every clean build after it
        debs = self._extra_debs()
        if debs:
            mounts: list[Mount] = [Tmpfs(RUN_DIR, size="1M")]
            mounts += [Bind(str(deb), f"{EXTRA_MOUNT}/{i}_{deb.name}") for i, deb in enumerate(debs)]
            copy = ["/bin/sh", "-c", f'set -e; mkdir -p {EXTRA_REPO}; cp {EXTRA_MOUNT}/*.deb {EXTRA_REPO}/; '
                    f'exec "$@"', "sh", *build.extra_repo_script()]
            root.checked_run(copy, "extra-packages", root_fs=root_fs, mounts=mounts)
            root.apt_run(build.extra_repo_update_command(), "apt-update-extra", root_fs=root_fs)
        from_plugins = [p for ps in root.hook.debmock_build_packages(root=root) for p in ps]
        packages = [*build.CORE_BUILD_PACKAGES, *from_plugins, *self.options.additional_packages]
        apt.check_package_names(packages)
        dsc_inside = f"{SOURCE_MOUNT}/{context.source.dsc.name}"
        build_dep = build.build_dep_command(dsc_inside, self.options)
        key = declared = ""
        if cache is not None:
            # With the same package lists these declarations always resolve to the same set:
            # an alias from their digest to the layer spares the resolver.
            declaration = [f"lists {root.lists_stamp()}", *(f"{f}: {v}" for f, v in context.source.build_relations),
                           f"build {build.build_targets(self.options)} profiles {self.options.all_profiles}",
                           f"packages {packages}", f"apt options {root.config.apt_options}"]
            declared = cache.key(root.base_content_id, declaration, debs)
            context.deps_lease = cache.acquire_alias(declared)
            if context.deps_lease is None:
                # what apt would install (names, versions) is the layer's key
                planned = root.apt_run(apt.simulate(apt.install_command(packages)), "apt-plan", root_fs=root_fs)
                planned += root.apt_run(apt.simulate(build_dep), "apt-plan-build-dep", root_fs=root_fs,
                                        mounts=self._source_mounts(context.source))
                key = cache.key(root.base_content_id, apt.planned_installs(planned), debs)
                context.deps_lease = cache.acquire(key)
                if context.deps_lease is not None:
                    cache.alias(declared, key)
            if context.deps_lease is not None:
                layer = context.deps_lease.layer
                root.logs.write_root_log(f"deb-mock: build-deps layer {layer.name} reused: no apt run")
                root.console.info(f"build dependencies: reusing the cached layer {layer.name[:12]}")
                context.root_fs = root.new_scratch("build", lowers=(str(layer), str(root.paths.base)))
                return
        root.apt_run(apt.install_command(packages), "apt-install", root_fs=root_fs)
        root.apt_run(build_dep, "apt-build-dep", root_fs=root_fs, mounts=self._source_mounts(context.source))
        # a build's upper in RAM (tmpfs plugin) cannot be renamed into the on-disk cache: used, not saved
        if cache is not None and not root.scratch_in_ram:
            context.deps_lease = cache.store(key, root.store.scratch_upper("build"))
            if cache.refused:
                root.console.warn(f"the build-deps layer cannot be kept ({cache.refused}): "
                                  "put cache_topdir on the file system of basedir")
            if context.deps_lease is not None:
                cache.alias(declared, key)
                root.logs.write_root_log(f"deb-mock: build-deps layer {key} saved")
                context.root_fs = root.new_scratch("build", lowers=(str(context.deps_lease.layer),
                                                                    str(root.paths.base)))

    def _extra_debs(self) -> list[Path]:
        debs: list[Path] = []
        for item in self.options.extra_packages:
            if item.is_dir():
                debs += sorted(p.resolve() for p in item.glob("*.deb"))
            elif item.is_file() and item.suffix == ".deb":
                debs.append(item.resolve())
            else:
                raise UsageError(f"--extra-package {item}: not a .deb file or a directory of them")
        return debs

    def _unpack(self, context: BuildContext) -> None:
        wrapper = ["/bin/sh", "-c", 'set -e; mkdir -p "$1"; rm -rf -- "$2"; cd "$1"; shift 2; exec "$@"', "sh",
                   BUILD_TOP, context.build_dir, *build.unpack_command(context.source)]
        self.root.checked_run(wrapper, "unpack", root_fs=context.root_fs, unpriv=True,
                              mounts=self._source_mounts(context.source))

    def _dpkg_buildpackage(self, context: BuildContext) -> int:
        root = self.root
        argv = build.dpkg_buildpackage_command(self.options)
        env = build.build_environment(self.options, root.config.build_user)
        for extra in root.hook.debmock_build_environment(root=root, build=context):
            for key, value in extra.items():
                env[key] = f"{value}:{env[key]}" if key == "PATH" else value
        mounts = [m for ms in root.hook.debmock_build_mounts(root=root, build=context) for m in ms]
        log = context.resultdir / "build.log"
        log.write_text("", encoding="utf-8")
        with root.logs.sink("build", log_path=log) as sink:
            sink.line_to_log_only(f"deb-mock: building {context.source.name} {context.source.version} "
                                  f"in {context.build_dir}")
            sink.line_to_log_only(f"deb-mock: {' '.join(argv)}")
            sink.line_to_log_only("deb-mock: environment: " + " ".join(f"{k}={v}" for k, v in sorted(env.items())))
            returncode = root.run_in_root(argv, purpose="build", sink=sink, root_fs=context.root_fs, unpriv=True,
                                          cwd=context.build_dir, env=env, mounts=mounts,
                                          network=True if self.options.enable_network else None)
            if returncode == 0 and self.options.source_only_changes:
                argv2 = build.source_only_changes_command(context.source, self.options)
                returncode = root.run_in_root(argv2, purpose="build", sink=sink, root_fs=context.root_fs,
                                              unpriv=True, cwd=context.build_dir, env=env, network=False)
        return returncode

    def _collect(self, context: BuildContext) -> None:
        patterns = list(build.ARTIFACT_PATTERNS)
        if self.options.source:
            patterns += build.SOURCE_PATTERNS
        mounts: list[Mount] = [Tmpfs(RUN_DIR, size="1M"),
                               Bind(str(context.resultdir.resolve()), RESULT_MOUNT, readonly=False)]
        names = self.root.checked_run(build.collect_command(patterns), "results", root_fs=context.root_fs,
                                      mounts=mounts)
        context.artifacts = [Artifact.of(context.resultdir / name) for name in sorted(set(names)) if name.strip()]


# -- sources: fetched by name, or built from an unpacked tree ------------------------------------


def fetch_source(root: Root, spec: str, dest: Path) -> SourcePackage:
    """Download source package ``NAME`` or ``NAME=VERSION`` from the root's archive (as sbuild does)."""
    name, _, version = spec.split("/", 1)[0].partition("=")
    apt.check_package_names([spec])
    if root.config.offline:
        raise UsageError(f"cannot fetch source package '{spec}' offline: give a .dsc file")
    root.require_initialized()
    dest = dest / spec.replace("/", "_").replace(":", "_")
    if dest.exists():
        shutil.rmtree(dest)  # a clean download each time: no stale .dsc of an earlier try
    dest.mkdir(parents=True)
    root_fs = root.new_scratch("fetch")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src_list = Path(tmp) / "deb-mock-src.sources"
            src_list.write_text(deb_src_entries(root.paths.base, root.config.source_suites), encoding="utf-8")
            mounts: list[Mount] = [Tmpfs(RUN_DIR, size="1M"), Bind(str(src_list), f"{RUN_DIR}/src.sources")]
            root.checked_run(["cp", f"{RUN_DIR}/src.sources", "/etc/apt/sources.list.d/deb-mock-src.sources"],
                             "fetch", root_fs=root_fs, mounts=mounts)
        root.apt_run(apt.update_command(), "apt-update", root_fs=root_fs)
        mounts = [Tmpfs(RUN_DIR, size="1M"), Bind(str(dest.resolve()), RESULT_MOUNT, readonly=False)]
        argv = ["/bin/sh", "-c", 'cd "$1" && shift && exec "$@"', "sh", RESULT_MOUNT,
                "apt-get", "--yes", "-o", "APT::Sandbox::User=root", "source", "--download-only", spec]
        root.apt_run(argv, "apt-source", root_fs=root_fs, mounts=mounts)
    finally:
        root.discard_scratch("fetch")
    candidates = sorted(dest.glob(f"{name}_{version.split(':', 1)[-1] if version else ''}*.dsc"))
    if not candidates:
        raise PackageError(f"apt-get source {spec} downloaded no .dsc into {dest}")
    return read_dsc(max(candidates, key=lambda p: p.stat().st_mtime))


def deb_src_entries(base: Path, extra_suites: Sequence[str] = ()) -> str:
    """deb822 ``deb-src`` stanzas mirroring the base's binary sources.

    ``extra_suites`` adds stanzas for more suites of the first archive (say sid
    sources for a trixie root), never naming an archive host of its own.
    """
    stanzas: list[str] = []
    one_line = base / "etc" / "apt" / "sources.list"
    if one_line.is_file() and not one_line.is_symlink():
        for line in one_line.read_text(encoding="utf-8").splitlines():
            words = line.split()
            if len(words) >= 4 and words[0] == "deb":
                options = []
                rest = words[1:]
                if rest[0].startswith("["):
                    while rest and not rest[0].endswith("]"):
                        options.append(rest.pop(0))
                    options.append(rest.pop(0))
                stanza = ["Types: deb-src", f"URIs: {rest[0]}", f"Suites: {rest[1]}",
                          f"Components: {' '.join(rest[2:])}"]
                stanza += [_option_field(o.strip("[]")) for o in options if o.strip("[]")]
                stanzas.append("\n".join(s for s in stanza if s))
    from debian.deb822 import Deb822  # imported where used: a warm run must start fast

    parts = base / "etc" / "apt" / "sources.list.d"
    if parts.is_dir() and not parts.is_symlink():
        for path in sorted(parts.glob("*.sources")):
            if path.is_symlink():
                continue
            for paragraph in Deb822.iter_paragraphs(path.read_text(encoding="utf-8").splitlines(keepends=True)):
                if "deb" in paragraph.get("Types", "").split():
                    paragraph["Types"] = "deb-src"
                    stanzas.append(paragraph.dump().strip())
    if not stanzas:
        raise RootError(f"{base}: no apt sources found to derive deb-src entries from")
    for suite in extra_suites:
        first = Deb822(stanzas[0].splitlines(keepends=False))
        first["Suites"] = suite
        stanzas.append(first.dump().strip())
    return "\n\n".join(stanzas) + "\n"


def _option_field(option: str) -> str:
    key, _, value = option.partition("=")
    fields = {"signed-by": "Signed-By", "trusted": "Trusted"}
    return f"{fields[key]}: {value}" if key in fields else ""


def build_source_package(root: Root, tree: Path, options: BuildOptions) -> SourcePackage:
    """Build the source package of an unpacked tree (pdebuild, mock --buildsrpm) into the result dir."""
    from debian.changelog import Changelog  # imported where used: a warm run must start fast

    changelog_file = tree / "debian" / "changelog"
    if not changelog_file.is_file():
        raise PackageError(f"{tree}: not an unpacked Debian source (no debian/changelog)")
    try:
        changelog = Changelog(changelog_file.read_text(encoding="utf-8"), max_blocks=1)
        name, version = str(changelog.package), str(changelog.version)
    except Exception as exc:  # python-debian raises several kinds for a malformed changelog
        raise PackageError(f"{changelog_file}: cannot read the changelog: {exc}") from None
    upstream = changelog.upstream_version or version
    root.require_initialized()
    root.resultdir.mkdir(parents=True, exist_ok=True)
    root_fs = root.new_scratch("buildsrc")
    inside = f"{BUILD_TOP}/{tree.resolve().name}"
    mounts: list[Mount] = [Tmpfs(RUN_DIR, size="1M"), Bind(str(tree.resolve()), f"{SOURCE_MOUNT}/tree")]
    origs = sorted(tree.resolve().parent.glob(f"{name}_{upstream}.orig*.tar.*"))
    mounts += [Bind(str(o), f"{SOURCE_MOUNT}/{o.name}") for o in origs]
    try:
        copy = ["/bin/sh", "-c", 'set -e; mkdir -p "$1"; rm -rf -- "$2"; cp -a "$3" "$2"; shift 3; '
                'for o in "$@"; do cp "$o" "$(dirname "$2")/"; done', "sh", BUILD_TOP, inside,
                f"{SOURCE_MOUNT}/tree", *(f"{SOURCE_MOUNT}/{o.name}" for o in origs)]
        root.checked_run(copy, "buildsrc-copy", root_fs=root_fs, unpriv=True, mounts=mounts)
        if root.lists_are_stale(scratch=True):
            root.apt_run(apt.update_command(), "apt-update", root_fs=root_fs)
        root.apt_run(apt.install_command(build.CORE_BUILD_PACKAGES), "apt-install", root_fs=root_fs)
        root.apt_run(build.build_dep_command(inside, dataclasses.replace(options, source=True)),
                     "apt-build-dep", root_fs=root_fs)
        env = build.build_environment(options, root.config.build_user)
        with root.logs.stage("buildsrc"), root.logs.sink("buildsrc", log_path=root.resultdir / "buildsrc.log") as sink:
            returncode = root.run_in_root(["dpkg-buildpackage", "-us", "-uc", "--build=source"], purpose="build",
                                          sink=sink, root_fs=root_fs, unpriv=True, cwd=inside, env=env)
        if returncode != 0:
            raise BuildError(f"building the source package of {tree} failed:\n" + "\n".join(sink.tail[-20:]))
        out: list[Mount] = [Tmpfs(RUN_DIR, size="1M"),
                            Bind(str(root.resultdir.resolve()), RESULT_MOUNT, readonly=False)]
        root.checked_run(build.collect_command([f"{name}_*.dsc", f"{name}_*.tar.*", f"{name}_*.diff.gz"]),
                         "results", root_fs=root_fs, mounts=out)
    finally:
        root.discard_scratch("buildsrc")
    dscs = sorted(root.resultdir.glob(f"{name}_{version.split(':', 1)[-1]}.dsc"))
    if not dscs:
        raise PackageError(f"building the source package of {tree} produced no .dsc")
    return read_dsc(dscs[0])
