"""Run package builds in a root: build dependencies, unpack, dpkg-buildpackage, results.

A clean build (the default) runs in a throw-away overlay upper of the root's
base, so the root itself is untouched and the next build starts clean at no
cost; ``-n`` builds in the root's persistent state instead. Every step is a
separate sandbox entry on the same upper: apt steps get the network (unless
offline), the build itself never does unless asked. The command lines come
from :mod:`deb_mock.build_commands`; everything runs through the root's
services.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from deb_mock import apt, aptitude_resolver, base_upgrade, build_commands, build_sources, result_checks, signing, trash
from deb_mock.build_commands import BUILD_TOP, EXTRA_REPO, RESULT_MOUNT, SOURCE_MOUNT, BuildOptions
from deb_mock.build_deps_cache import BuildDepsCache, Lease
from deb_mock.build_deps_remote import RemoteBuildDeps
from deb_mock.errors import BuildError, ChainPartial, DebMockError, PackageError, UsageError
from deb_mock.result import Artifact
from deb_mock.sandbox.spec import RUN_DIR, Bind, Mount, OverlayRoot, RootFs, with_run_dir
from deb_mock.services import Purpose, RootServices
from deb_mock.source import SourcePackage, read_dsc, verify_signature
from deb_mock.source_trees import TREE_OUT, copy_in, copy_out_command, tree_cache, tree_key
from deb_mock.stage_runner import StageRunner

#: where --extra-package files appear inside the root while they are copied into EXTRA_REPO
EXTRA_MOUNT = f"{RUN_DIR}/extra"
#: the name of a build's throw-away upper (scratch/<name>) in the root's directory
BUILD_SCRATCH = "build"


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
    #: whether the source is unpacked in build_dir yet (a kept failed build opens there, else at /)
    unpacked: bool = False


class PackageBuilder:
    """Builds source packages in one root with one set of options.

    ``postinstall`` installs packages into the root itself (Root.install): it
    is given, not looked up, so the builder never depends on Root.
    """

    def __init__(self, services: RootServices, options: BuildOptions,
                 postinstall: Callable[[Sequence[str]], None] | None = None) -> None:
        config = services.config
        if options.build_dep_resolver is None:
            options = dataclasses.replace(options, build_dep_resolver=config.build_dep_resolver)
        if options.resolve_alternatives is None:  # aptitude's point is to search them (as in sbuild)
            options = dataclasses.replace(options, resolve_alternatives=config.resolve_alternatives
                                          or options.build_dep_resolver == "aptitude")
        if options.apt_distupgrade is None:
            options = dataclasses.replace(options, apt_distupgrade=config.apt_distupgrade)
        if options.build_dep_resolver == "aptitude" and options.host_arch:
            raise UsageError(f"--host {options.host_arch}: a cross build's dependencies are resolved by apt; "
                             "drop --build-dep-resolver aptitude")
        options = build_commands.cross_options(options)
        self.services = services
        self.options = options
        self.postinstall = postinstall
        #: extra repositories of the build: the config's, then the command line's
        self.sources = build_sources.BuildSources.parse(
            [*config.build_sources, *options.extra_repositories],
            [*(Path(key) for key in config.build_source_keys), *options.extra_repository_keys],
            "--extra-repository")

    # -- entry points ---------------------------------------------------------------

    def build_all(self, sources: Sequence[SourcePackage], *, chain: bool, keep_going: bool) -> list[BuildContext]:
        """Build ``sources`` in order; with ``chain`` each result is offered to the next."""
        services = self.services
        results: list[BuildContext] = []
        failures: list[str] = []
        chain_dir = services.paths.top / "chain-repo"
        if chain_dir.exists():
            shutil.rmtree(chain_dir)
        for source in sources:
            resultdir = services.resultdir if len(sources) == 1 else (
                services.resultdir / f"{source.name}_{source.version.split(':', 1)[-1]}")
            options = self.options
            if chain and chain_dir.exists():
                options = dataclasses.replace(options, extra_packages=(*options.extra_packages, chain_dir))
            try:
                context = PackageBuilder(services, options, self.postinstall).build(source, resultdir)
            except DebMockError as exc:
                if not keep_going or len(sources) == 1:
                    raise
                failures.append(f"{source.name} {source.version}: {exc.message.splitlines()[0]}")
                services.console.error(f"{source.name} {source.version} failed: {exc.message.splitlines()[0]}")
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
        services = self.services
        if services.config.source_keyrings:
            services.logs.write_root_log(verify_signature(source, services.config.source_keyrings))
        services.require_initialized()
        resultdir.mkdir(parents=True, exist_ok=True)
        build_log = resultdir / "build.log"
        build_log.write_text("", encoding="utf-8")
        stages = StageRunner(services, self.options, source, build_log)
        build_dir = f"{BUILD_TOP}/{source.build_dir_name}"
        stages.on_host("pre-build-commands", build_dir, None)
        services.store.remove_leftovers()
        services.store.drop_failed_build()
        if not self.options.no_clean:  # a clean build runs over the base: make it current first
            upgraded = base_upgrade.keep_base_current(services, allowed=bool(self.options.apt_distupgrade))
            services.result.extra.setdefault("base_upgraded", []).extend(upgraded)
        root_fs = services.store.overlay() if self.options.no_clean else services.new_scratch(BUILD_SCRATCH)
        context = BuildContext(source, self.options, root_fs, build_dir, resultdir)
        self._record_versions(source)
        try:
            try:
                self._build_steps(context, stages)
            except BaseException as exc:
                self._end_of_root(context, failed=isinstance(exc, DebMockError))
                raise
            self._end_of_root(context, failed=False)
            result_checks.run_checks(services, source, context.artifacts, resultdir, self._check_options())
            self._sign(context)
        except DebMockError:
            stages.on_host("post-build-failed-commands", build_dir, self._changes(context), failing=True)
            raise
        stages.on_host("post-build-commands", build_dir, self._changes(context))
        if self.options.postinstall and self.postinstall is not None:
            built = [a.path for a in context.artifacts if a.path.endswith(".deb")]
            self.postinstall([path for path in built if "-dbgsym_" not in path])
        return context

    def _sign(self, context: BuildContext) -> None:
        """debsign the results with -k/key_id (result.json ``signed`` is false without a key)."""
        services = self.services
        keyid = self.options.keyid if self.options.keyid is not None else services.config.key_id
        services.result.extra["signed"] = False
        if keyid:
            services.result.extra["signed"] = signing.sign_results(keyid, context.artifacts)
            context.artifacts = [Artifact.of(Path(a.path)) for a in context.artifacts]

    def _record_versions(self, source: SourcePackage) -> None:
        """What result.json says of the build: versions, host architecture, extra repositories."""
        options, config = self.options, self.services.config
        self.services.result.extra.setdefault("versions", []).append({
            "source": source.name, "source_version": source.version,
            "binary_version": build_commands.binary_version(source.version, options),
            "binary_only": build_commands.changes_binary_version(options),
            "host_architecture": options.host_arch or config.architecture,
            "extra_repositories": [*self.sources.one_line, *self.sources.deb822]})

    def _check_options(self) -> result_checks.CheckOptions:
        """The checks of the results: the command line's choice, else the config's."""
        options, config = self.options, self.services.config

        def pick(value: bool | None, default: bool) -> bool:
            return default if value is None else value

        return result_checks.CheckOptions(
            autopkgtest=pick(options.run_autopkgtest, config.run_autopkgtest),
            autopkgtest_opts=options.autopkgtest_opts if options.autopkgtest_opts is not None
            else config.autopkgtest_opts,
            autopkgtest_fail=pick(options.autopkgtest_fail, config.autopkgtest_fail),
            piuparts=pick(options.run_piuparts, config.run_piuparts),
            piuparts_fail=pick(options.piuparts_fail, config.piuparts_fail))

    def _end_of_root(self, context: BuildContext, failed: bool) -> None:
        """Discard the build's throw-away root, or keep a failed one (--keep-failed); free its layer."""
        services = self.services
        keep = self.options.keep_failed if self.options.keep_failed is not None else services.config.keep_failed
        try:
            if self.options.no_clean:
                return
            if failed and keep and not services.scratch_in_ram and isinstance(context.root_fs, OverlayRoot):
                where = context.build_dir if context.unpacked else "/"
                services.store.keep_scratch(BUILD_SCRATCH, {
                    "lowers": list(context.root_fs.lowers), "build_dir": where,
                    "source": context.source.name, "version": context.source.version})
                kept = str(services.paths.failed_build)
                services.result.extra["failed_build"] = {"path": kept, "build_dir": where}
                services.console.info(f"the failed build is kept in {kept}: "
                                      f"deb-mock -r {services.root_id} --shell --failed-build")
                return
            if failed and keep:
                services.console.warn("the failed build ran in RAM (tmpfs plugin) and cannot be kept")
            with services.logs.stage("cleanup"):
                services.retire_scratch(BUILD_SCRATCH)
        finally:
            if context.deps_lease is not None:
                context.deps_lease.release()
                context.deps_lease = None

    @staticmethod
    def _changes(context: BuildContext) -> Path | None:
        found = [Path(a.path) for a in context.artifacts
                 if a.path.endswith(".changes") and not a.path.endswith("_source.changes")]
        return found[0] if found else None

    def _build_steps(self, context: BuildContext, stages: StageRunner) -> None:
        services = self.services
        with services.logs.stage("build-deps"):
            stages.in_root("chroot-setup-commands", context.root_fs, context.build_dir)
            try:
                self._install_build_deps(context, stages)
            except DebMockError:
                stages.in_root("build-deps-failed-commands", context.root_fs, context.build_dir, failing=True)
                raise
        with services.logs.stage("installed-packages"):
            packages = services.write_installed_packages(context.root_fs, context.resultdir)
        if packages is not None:  # what the build ran on, for the engine that drives deb-mock (Koji's buildroot list)
            services.result.extra["root_packages"] = packages
        with services.logs.stage("unpack"):
            self._unpack(context)
            self._add_binary_only_entry(context)
        context.unpacked = True
        stages.in_root("starting-build-commands", context.root_fs, context.build_dir)
        services.hook.debmock_pre_build(root=services, build=context)
        with services.logs.stage("build"), trash.emptied_meanwhile(services.paths.top):
            returncode = self._dpkg_buildpackage(context)
        context.success = returncode == 0
        log = context.resultdir / "build.log"
        tail = [] if context.success else log.read_text(encoding="utf-8", errors="replace").splitlines()[-25:]
        if not context.success:
            stages.in_root("build-failed-commands", context.root_fs, context.build_dir, failing=True)
        stages.in_root("finished-build-commands", context.root_fs, context.build_dir, success=context.success,
                       failing=not context.success)
        if context.success:
            with services.logs.stage("results"):
                context.artifacts = self._collect(context.root_fs, ["*.changes"], context.resultdir)
        services.hook.debmock_post_build(root=services, build=context)
        changes = self._changes(context)
        stages.in_root("chroot-cleanup-commands", context.root_fs, context.build_dir, success=context.success,
                       changes=f"{BUILD_TOP}/{changes.name}" if changes else None, failing=not context.success)
        if not context.success:
            raise BuildError(f"{context.source.name} {context.source.version} failed to build "
                             f"(dpkg-buildpackage exit code {returncode}); the end of build.log:\n"
                             + "\n".join(tail), hint=f"the whole log is {log}")

    def build_source_package(self, tree: Path) -> SourcePackage:
        """Build the source package of an unpacked tree (pdebuild, mock --buildsrpm) into the result dir."""
        services = self.services
        name, version, upstream = _changelog_identity(tree)
        services.require_initialized()
        services.resultdir.mkdir(parents=True, exist_ok=True)
        root_fs = services.new_scratch("buildsrc")
        inside = f"{BUILD_TOP}/{tree.resolve().name}"
        origs = sorted(tree.resolve().parent.glob(f"{name}_{upstream}.orig*.tar.*"))
        mounts = with_run_dir(Bind(str(tree.resolve()), f"{SOURCE_MOUNT}/tree"),
                              *(Bind(str(o), f"{SOURCE_MOUNT}/{o.name}") for o in origs))
        try:
            copy = ["/bin/sh", "-c", 'set -e; mkdir -p "$1"; rm -rf -- "$2"; cp -a "$3" "$2"; shift 3; '
                    'for o in "$@"; do cp "$o" "$(dirname "$2")/"; done', "sh", BUILD_TOP, inside,
                    f"{SOURCE_MOUNT}/tree", *(f"{SOURCE_MOUNT}/{o.name}" for o in origs)]
            services.checked_run(copy, "buildsrc-copy", root_fs=root_fs, unpriv=True, mounts=mounts)
            services.refresh_lists_if_stale(in_base=True)
            build_dep = build_commands.build_dep_command(inside, dataclasses.replace(self.options, source=True))
            self._install_packages(root_fs, build_commands.CORE_BUILD_PACKAGES, build_dep, [])
            log = services.resultdir / "buildsrc.log"
            with services.logs.stage("buildsrc"), services.logs.sink("buildsrc", log_path=log) as sink:
                source_options = [f"--source-option={o}" for o in self.options.dpkg_source_opts]
                returncode = services.run_in_root(["dpkg-buildpackage", "-us", "-uc", "--build=source",
                                                   *source_options],
                                                  purpose=Purpose.BUILD, sink=sink, root_fs=root_fs, unpriv=True,
                                                  cwd=inside, env=self._environment(None))
            if returncode != 0:
                raise BuildError(f"building the source package of {tree} failed:\n" + "\n".join(sink.tail[-20:]))
            self._collect(root_fs, [f"{name}_*_source.changes"], services.resultdir)
        finally:
            services.discard_scratch("buildsrc")
        dscs = sorted(services.resultdir.glob(f"{name}_{version.split(':', 1)[-1]}.dsc"))
        if not dscs:
            raise PackageError(f"building the source package of {tree} produced no .dsc")
        return read_dsc(dscs[0])

    # -- build dependencies ------------------------------------------------------------

    def install_build_deps_in_root(self, source: SourcePackage) -> None:
        """apt-get build-dep of ``source`` into the root's own state (--installdeps, for work by hand)."""
        build_dep = build_commands.build_dep_command(f"{SOURCE_MOUNT}/{source.dsc.name}", self.options)
        self._install_packages(self.services.store.overlay(), build_commands.CORE_BUILD_PACKAGES, build_dep,
                               self._source_mounts(source))

    def _install_build_deps(self, context: BuildContext, stages: StageRunner) -> None:
        services, root_fs = self.services, context.root_fs
        # what ran in the root before its build dependencies must not end up in a shared layer
        cached = not self.options.no_clean and not stages.touches_setup
        cache = BuildDepsCache.for_config(services.config) if cached else None
        try:
            services.refresh_lists_if_stale(root_fs if cache is None else None, in_base=cache is not None)
        except DebMockError:
            stages.in_root("chroot-update-failed-commands", root_fs, context.build_dir, failing=True)
            raise
        debs = self._extra_debs()
        if debs:
            self._offer_extra_debs(root_fs, debs)
        from_plugins = [p for ps in services.hook.debmock_build_packages(root=services) for p in ps]
        packages = [*build_commands.CORE_BUILD_PACKAGES, *from_plugins, *self.options.additional_packages]
        apt.check_package_names(packages)
        build_dep = self._build_dep_command(context.source)
        if self.options.build_dep_resolver == "aptitude":
            packages += aptitude_resolver.PACKAGES
        source_mounts = self._source_mounts(context.source)
        if cache is None:
            self._add_build_sources(root_fs)
            self._install_packages(root_fs, packages, build_dep, source_mounts)
            return
        # With the same package lists these declarations always resolve to the same set:
        # an alias from their digest to the layer spares the resolver.
        base_id = services.store.base_content_id()
        declared = cache.key(base_id, self._declaration(context, packages), debs)
        context.deps_lease = cache.acquire_alias(declared)
        remote = RemoteBuildDeps.of(services, cache)
        if context.deps_lease is None and remote is not None:
            context.deps_lease = remote.pull(declared)
        key = ""
        if context.deps_lease is None:
            self._add_build_sources(root_fs)
            key = self._planned_key(cache, base_id, packages, build_dep, root_fs, source_mounts, debs) or declared
            context.deps_lease = cache.acquire(key)
            if context.deps_lease is not None:
                cache.alias(declared, key)
        if context.deps_lease is not None:
            layer = context.deps_lease.layer
            services.logs.write_root_log(f"deb-mock: build-deps layer {layer.name} reused: no apt run")
            services.console.info(f"build dependencies: reusing the cached layer {layer.name[:12]}")
            context.root_fs = services.new_scratch(BUILD_SCRATCH, lowers=(str(layer), str(services.paths.base)))
            return
        self._install_packages(root_fs, packages, build_dep, source_mounts)
        self._save_build_deps_layer(context, cache, key, declared)
        if remote is not None and context.deps_lease is not None:
            remote.push(declared, key, context.deps_lease.layer)

    def _build_dep_command(self, source: SourcePackage) -> list[str]:
        """apt-get satisfy of the build relations, or the aptitude resolver's script."""
        if self.options.build_dep_resolver != "aptitude":
            return build_commands.satisfy_build_deps_command(source, self.options)
        depends, conflicts = build_commands.selected_relations(source, self.options)
        return aptitude_resolver.build_deps_command(depends, conflicts, self.services.config.architecture,
                                                    self.options.all_profiles)

    def _planned_key(self, cache: BuildDepsCache, base_id: str, packages: Sequence[str], build_dep: list[str],
                     root_fs: RootFs, source_mounts: list[Mount], debs: list[Path]) -> str | None:
        """The layer's key from what apt would install (names, versions); None when aptitude resolves."""
        if self.options.build_dep_resolver == "aptitude":
            return None  # aptitude's choice cannot be simulated cheaply: the declaration is the key
        services = self.services
        planned = services.apt_run(apt.simulate(apt.install_command(packages)), "apt-plan", root_fs=root_fs)
        planned += services.apt_run(apt.simulate(build_dep), "apt-plan-build-dep", root_fs=root_fs,
                                    mounts=source_mounts)
        return cache.key(base_id, [*apt.planned_installs(planned), *self._layer_inputs()], debs)

    def _declaration(self, context: BuildContext, packages: Sequence[str]) -> list[str]:
        """What the build asks for: with the same lists, it always resolves to the same installed set."""
        services = self.services
        return [f"lists {services.store.lists_stamp()}",
                *(f"{f}: {v}" for f, v in context.source.build_relations),
                f"build {build_commands.build_targets(self.options)} profiles {self.options.all_profiles}",
                f"packages {list(packages)}", f"apt options {services.config.apt_options}",
                f"resolver {self.options.build_dep_resolver} "
                f"{'all alternatives' if self.options.resolve_alternatives else 'first alternatives'}",
                *self._layer_inputs()]

    def _layer_inputs(self) -> list[str]:
        """What a build-deps layer holds besides its packages: the extra repositories and the host architecture."""
        return [*self.sources.declaration(),
                f"host architecture {self.options.host_arch or self.services.config.architecture}"]

    def _add_build_sources(self, root_fs: RootFs) -> None:
        """The build's extra repositories and keys, and a cross build's architecture, in its throw-away layer."""
        if self.options.host_arch:
            self.services.checked_run(["dpkg", "--add-architecture", self.options.host_arch], "cross-architecture",
                                      root_fs=root_fs)
            self.services.apt_run(apt.update_command(strict=True), f"apt-update-{self.options.host_arch}",
                                  root_fs=root_fs)
        if not self.sources:
            return
        mounts = with_run_dir(*(Bind(str(key), f"{build_sources.KEY_MOUNT}/{name}")
                                for key, name in zip(self.sources.keys, self.sources.key_names(), strict=True)))
        self.services.checked_run(self.sources.install_command(), "extra-repositories", root_fs=root_fs,
                                  mounts=mounts, env=self.sources.environment())
        for argv in self.sources.update_commands():
            self.services.apt_run(argv, "apt-update-extra-repositories", root_fs=root_fs)

    def _install_packages(self, root_fs: RootFs, packages: Sequence[str], build_dep: list[str],
                          source_mounts: list[Mount]) -> None:
        """apt-get install of ``packages``, then apt-get build-dep."""
        self.services.apt_run(apt.install_command(packages), "apt-install", root_fs=root_fs)
        self.services.apt_run(build_dep, "apt-build-dep", root_fs=root_fs, mounts=source_mounts)

    def _save_build_deps_layer(self, context: BuildContext, cache: BuildDepsCache, key: str, declared: str) -> None:
        """Keep the build's upper as the layer for ``key`` and go on building on top of it."""
        services = self.services
        if services.scratch_in_ram:
            return  # a build's upper in RAM (tmpfs plugin) cannot be renamed into the on-disk cache
        context.deps_lease = cache.store(key, services.store.scratch_upper(BUILD_SCRATCH))
        if cache.refused:
            services.console.warn(cache.refusal("build-deps layer"))
        if context.deps_lease is not None:
            cache.alias(declared, key)
            services.logs.write_root_log(f"deb-mock: build-deps layer {key} saved")
            context.root_fs = services.new_scratch(BUILD_SCRATCH, lowers=(str(context.deps_lease.layer),
                                                                          str(services.paths.base)))

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

    def _offer_extra_debs(self, root_fs: RootFs, debs: list[Path]) -> None:
        """Copy local .debs into a trusted local repository inside the build's root."""
        mounts = with_run_dir(*(Bind(str(deb), f"{EXTRA_MOUNT}/{i}_{deb.name}") for i, deb in enumerate(debs)))
        copy = ["/bin/sh", "-c", f'set -e; mkdir -p {EXTRA_REPO}; cp {EXTRA_MOUNT}/*.deb {EXTRA_REPO}/; exec "$@"',
                "sh", *build_commands.extra_repo_script()]
        self.services.checked_run(copy, "extra-packages", root_fs=root_fs, mounts=mounts)
        self.services.apt_run(build_commands.extra_repo_update_command(), "apt-update-extra", root_fs=root_fs)

    # -- unpack, build, collect ----------------------------------------------------------

    @staticmethod
    def _source_mounts(source: SourcePackage) -> list[Mount]:
        return with_run_dir(*(Bind(str(f), f"{SOURCE_MOUNT}/{f.name}") for f in source.all_files))

    def _unpack(self, context: BuildContext) -> None:
        """The source's tree in the build's root: a copy of the same source's tree kept by an earlier build,
        or dpkg-source -x (and the tree kept for the next build)."""
        services = self.services
        cache, key = self._tree_key(context)
        lease = cache.acquire(key) if cache is not None else None
        if lease is not None:
            try:
                argv, mounts = copy_in(lease.layer)
                services.checked_run(argv, "unpack", root_fs=context.root_fs, unpriv=True, mounts=mounts)
            finally:
                lease.release()
            services.logs.write_root_log(f"deb-mock: source tree {key} reused: no dpkg-source -x")
            return
        wrapper = ["/bin/sh", "-c", 'set -e; umask 022; mkdir -p "$1"; rm -rf -- "$2"; cd "$1"; shift 2; exec "$@"',
                   "sh", BUILD_TOP, context.build_dir, *build_commands.unpack_command(context.source)]
        services.checked_run(wrapper, "unpack", root_fs=context.root_fs, unpriv=True,
                             mounts=self._source_mounts(context.source))
        if cache is not None:
            self._keep_source_tree(context, cache, key)

    def _tree_key(self, context: BuildContext) -> tuple[BuildDepsCache | None, str]:
        """The source-trees cache and the key of this source's tree; no cache when the build's root holds
        changes of its own already (no cached build-deps layer under it) or the config keeps no trees."""
        services = self.services
        if context.deps_lease is None or services.config.source_trees_kept <= 0:
            return None, ""
        cache = tree_cache(services.config)
        return cache, tree_key(cache, services.store.base_content_id(), context.deps_lease.layer,
                               build_commands.unpack_command(context.source), services.config.sandbox.environment,
                               context.source.all_files)

    def _keep_source_tree(self, context: BuildContext, cache: BuildDepsCache, key: str) -> None:
        """Copy the freshly unpacked tree into the cache for the next build of the same source. Best effort:
        a tree that cannot be kept (a full disk, say) is a warning, and costs that build only the copy."""
        services = self.services
        lease, why = None, ""
        try:
            with services.logs.stage("keep-source-tree"), services.staging(TREE_OUT) as (stage, bind), \
                    services.logs.sink("keep-source-tree") as sink:
                if services.run_in_root(copy_out_command(), purpose=Purpose.HELPER, sink=sink,
                                        root_fs=context.root_fs, network=False, mounts=with_run_dir(bind)) == 0:
                    lease = cache.store(key, stage)
                    why = cache.refusal("unpacked source") if cache.refused else ""
                else:
                    why = "the unpacked source could not be copied out (see root.log)"
        except OSError as exc:
            why = f"the unpacked source could not be kept ({exc})"
        if lease is None:
            if why:  # else another build of the same source kept it meanwhile
                services.console.warn(f"{why}: the next build unpacks it again")
            return
        lease.release()
        services.logs.write_root_log(f"deb-mock: source tree {key} saved")
        try:
            cache.trim(services.config.source_trees_kept, keep=key)
        except OSError as exc:  # another run deleting the same tree, say: the next save trims again
            services.logs.write_root_log(f"deb-mock: trimming the source trees: {exc}")

    def _add_binary_only_entry(self, context: BuildContext) -> None:
        """A binNMU's or version suffix's changelog entry on top of the unpacked source, as sbuild writes it."""
        options, config = self.options, self.services.config
        if not build_commands.changes_binary_version(options):
            return
        entry = build_commands.binary_only_entry(context.source, options, options.host_arch or config.architecture,
                                                 config.suite, time.time())
        self.services.checked_run(build_commands.prepend_changelog_command(context.build_dir, entry),
                                  "binary-only-entry", root_fs=context.root_fs, unpriv=True)
        self.services.logs.write_root_log(f"deb-mock: binary-only changelog entry:\n{entry}")

    def _environment(self, context: BuildContext | None) -> dict[str, str]:
        """dpkg-buildpackage's environment; with a ``context``, plugins add to it."""
        services = self.services
        env = build_commands.build_environment(self.options, services.config.build_user)
        if context is not None:
            for extra in services.hook.debmock_build_environment(root=services, build=context):
                for key, value in extra.items():
                    env[key] = f"{value}:{env[key]}" if key == "PATH" else value
        return env

    def _dpkg_buildpackage(self, context: BuildContext) -> int:
        services = self.services
        argv = build_commands.dpkg_buildpackage_command(self.options)
        env = self._environment(context)
        mounts = [m for ms in services.hook.debmock_build_mounts(root=services, build=context) for m in ms]
        log = context.resultdir / "build.log"
        network = True if self.options.enable_network else None
        timeout = self.options.timeout if self.options.timeout is not None else services.config.build_timeout
        with services.logs.sink("build", log_path=log) as sink:
            sink.line_to_log_only(f"deb-mock: building {context.source.name} {context.source.version} "
                                  f"in {context.build_dir}")
            sink.line_to_log_only(f"deb-mock: {' '.join(argv)}")
            sink.line_to_log_only("deb-mock: environment: " + " ".join(f"{k}={v}" for k, v in sorted(env.items())))
            returncode = services.run_in_root(argv, purpose=Purpose.BUILD, sink=sink, root_fs=context.root_fs,
                                              unpriv=True, cwd=context.build_dir, env=env, mounts=mounts,
                                              network=network, timeout=timeout)
            if returncode == 0 and self.options.source_only_changes:
                argv2 = build_commands.source_only_changes_command(context.source, self.options)
                returncode = services.run_in_root(argv2, purpose=Purpose.BUILD, sink=sink, root_fs=context.root_fs,
                                                  unpriv=True, cwd=context.build_dir, env=env, network=False)
        return returncode

    def _collect(self, root_fs: RootFs, changes: Sequence[str], resultdir: Path) -> list[Artifact]:
        """Copy what the ``.changes`` files matching ``changes`` list (and they) into ``resultdir``."""
        with self.services.outbox(resultdir, RESULT_MOUNT) as outbox:
            names = self.services.checked_run(build_commands.collect_command(changes), "results", root_fs=root_fs,
                                              mounts=with_run_dir(outbox))
        return [Artifact.of(resultdir / name) for name in sorted(set(names)) if name.strip()]


def _changelog_identity(tree: Path) -> tuple[str, str, str]:
    """Source name, version and upstream version from an unpacked tree's debian/changelog."""
    from debian.changelog import Changelog  # imported where used: a warm run must start fast

    changelog_file = tree / "debian" / "changelog"
    if not changelog_file.is_file():
        raise PackageError(f"{tree}: not an unpacked Debian source (no debian/changelog)")
    try:
        changelog = Changelog(changelog_file.read_text(encoding="utf-8"), max_blocks=1)
        name, version = str(changelog.package), str(changelog.version)
    except Exception as exc:  # python-debian raises several kinds for a malformed changelog
        raise PackageError(f"{changelog_file}: cannot read the changelog: {exc}") from None
    return name, version, changelog.upstream_version or version
