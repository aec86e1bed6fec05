"""Root: the public verbs of deb-mock, for the CLI and for orchestrators.

A Root is one named, isolated Debian tree (config name plus optional
uniqueext). Its methods are what a user asks for (init, install, rebuild,
chroot, snapshot, scrub ...); the work is done by the root's services
(:mod:`deb_mock.services`), which builds, the base's set-up and plugins
receive instead of the Root. Root composes them and calls the hooks at fixed
points; it never builds a plugin manager (the CLI or the API hands it one)::

    from deb_mock.api import open_root
    with open_root("trixie-amd64") as root:
        root.init()
        root.install(["hello"])
        root.chroot(["hello"])
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import pluggy

from deb_mock import apt, bootstrap, copies, scrub, trash
from deb_mock.config import Config, LoadedConfig
from deb_mock.errors import Interrupted, ResultDirError, UsageError
from deb_mock.layerstore import RootPaths, remove_tree
from deb_mock.locks import root_lock
from deb_mock.logs import Console
from deb_mock.names import is_safe_name
from deb_mock.result import Artifact, RunResult
from deb_mock.sandbox.spec import RUN_DIR, Bind, Mount, OverlayRoot, with_run_dir
from deb_mock.services import Purpose, RootIdentity, RootServices
from deb_mock.spread_dirs import make_spread_directory
from deb_mock.stage_commands import chosen_hookdir

if TYPE_CHECKING:  # what only builds need is imported by builds (a warm --chroot starts faster)
    from deb_mock.build_commands import BuildOptions
    from deb_mock.builder import BuildContext, PackageBuilder
    from deb_mock.source import SourcePackage


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Per-run choices that are not configuration (they come from the command line)."""

    uniqueext: str | None = None
    resultdir: Path | None = None
    lock_timeout: float | None = None
    unpriv: bool = False
    cwd: str | None = None
    enable_network: bool = False
    #: --chroot/--shell in the failed build kept by --keep-failed
    failed_build: bool = False
    #: a pbuilder hook directory (--hookdir; F hooks before --chroot/--shell, E after --update)
    hookdir: Path | None = None


def root_identity(config: Config, options: RunOptions) -> RootIdentity:
    """The root's name, directory and result directory; a bad --uniqueext is exit 5."""
    if options.uniqueext is not None and not is_safe_name(options.uniqueext):
        raise UsageError(f"--uniqueext '{options.uniqueext}': use letters, digits and . _ + - only")
    root_id = f"{config.name}-{options.uniqueext}" if options.uniqueext else config.name
    paths = RootPaths(Path(config.basedir) / root_id)
    configured = Path(config.resultdir) if config.resultdir else None
    return RootIdentity(root_id, paths, options.resultdir or configured or paths.default_resultdir)


class Root:
    """One deb-mock root and everything a run can do with it.

    ``plugins`` are the run's enabled plugins; ``all_plugins`` (every plugin,
    enabled or not) are asked only by --scrub, so a disabled plugin's cache
    can still be deleted. Both are composed by the caller.
    """

    def __init__(
        self,
        loaded: LoadedConfig,
        plugins: pluggy.PluginManager,
        console: Console,
        options: RunOptions | None = None,
        *,
        all_plugins: pluggy.PluginManager | None = None,
    ) -> None:
        self.loaded = loaded
        self.config: Config = loaded.config
        self.options = options or RunOptions()
        self.console = console
        self.plugins = plugins
        self.hook = plugins.hook
        self._all_plugins = all_plugins or plugins
        self.services = RootServices(self.config, root_identity(self.config, self.options), self.hook, console,
                                     enable_network=self.options.enable_network, initializer=self._initialize)
        self.root_id = self.services.root_id
        self.paths = self.services.paths
        self.store = self.services.store
        self.resultdir = self.services.resultdir
        self.logs = self.services.logs

    @property
    def result(self) -> RunResult:
        """The run's result (what result.json and --json hold)."""
        return self.services.result

    @property
    def process_tag(self) -> str:
        """The tag every process of this root carries (--orphanskill finds them by it)."""
        return self.services.process_tag

    # -- run life cycle -------------------------------------------------------------

    def prepare_resultdir(self) -> None:
        """Create the result directory; exit 70 if it cannot be written."""
        try:
            self.resultdir.mkdir(parents=True, exist_ok=True)
            probe = self.resultdir / f".probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ResultDirError(f"result directory {self.resultdir}: {exc.strerror}") from None

    @contextlib.contextmanager
    def locked(self, mode: str) -> Iterator[None]:
        """Hold this root's lock for the duration of a mode (waiting as configured)."""
        timeout = self.options.lock_timeout
        if timeout is None:
            timeout = self.config.lock_timeout
        self.paths.top.parent.mkdir(parents=True, exist_ok=True)
        if self.services.id_map() is not None:  # root mode: the layers hold setuid files that are root's on disk
            for private in (self.paths.top.parent, Path(self.config.cache_topdir)):
                _make_private(private, self.console)
        with root_lock(self.paths.lock_file, mode, timeout, self.console.warn) as killed_before:
            self.services.orphans_possible = killed_before
            yield

    @contextlib.contextmanager
    def session(self, mode: str) -> Iterator[RunResult]:
        """One run: the lock, the result directory, configure hooks, and result.json at the end.

        The yielded result's exit code and error are filled in from an exception
        that leaves the block; its durations come from the stages that ran.
        """
        services = self.services
        services.result = RunResult(mode=mode, root=self.root_id, config_digest=self.loaded.digest,
                                    resultdir=str(self.resultdir))
        with self.locked(f"--{mode.replace('_', '-')}"):
            self.prepare_resultdir()
            if self.store.adopt_user_xattrs():
                self.console.info(f"{self.root_id} was made before roots ran in user namespaces: its overlay "
                                  "marks were converted (once)")
            try:
                self.hook.debmock_configure(root=services)
                services.start_session()
                yield services.result
            except BaseException as exc:
                services.result.record_failure(exc)
                if isinstance(exc, KeyboardInterrupt):
                    raise Interrupted("interrupted: the run was stopped and its sandbox removed") from None
                raise
            finally:
                services.result.durations = self.logs.durations
                try:
                    self.hook.debmock_process_logs(root=services, result=services.result)
                finally:
                    self.hook.debmock_unconfigure(root=services)
                    services.stop_session()
                    if self.resultdir.is_dir():
                        services.result.write(self.resultdir)

    # -- init -------------------------------------------------------------------------

    def is_initialized(self) -> bool:
        """True when the base exists and was recorded."""
        return self.store.is_initialized()

    def init(self) -> bool:
        """Create the root if needed; return True if a new base was made.

        A warm root costs only a check of state.json: no bootstrap, no mount.
        """
        digest = bootstrap.bootstrap_digest(self.config)
        if self.store.is_initialized():
            recorded = self.store.base_info().get("bootstrap_digest")
            if recorded and recorded != digest:
                self.console.warn(f"{self.root_id} was bootstrapped with other settings than the config has now; "
                                  "--scrub=chroot and --init to apply them")
            self.store.ensure_upper()
            return False
        self.paths.top.mkdir(parents=True, exist_ok=True)
        self.store.remove_leftovers()
        incoming = self.paths.incoming_base()
        make_spread_directory(incoming, 0o755)  # a bootstrap's thousands of files, away from recent deletions
        try:
            self.services.check_architecture()
            import uuid

            from deb_mock import base_setup

            content_id = base_setup.fill_base(self.services, incoming)
            self.store.commit_base(incoming, {
                "bootstrap_digest": digest, "config_digest": self.loaded.digest,
                "restored": content_id is not None, "content_id": content_id or f"local-{uuid.uuid4()}",
                "suite": self.config.suite, "architecture": self.config.architecture,
            })
        except BaseException:
            remove_tree(incoming)
            raise
        self.services.write_installed_packages()
        self.hook.debmock_root_initialized(root=self.services, restored=content_id is not None)
        # the base's packages were installed from these very lists: nothing in them is newer
        self.store.update_base_info(upgrade_checked=self.store.lists_stamp())
        return True

    def _initialize(self) -> None:
        self.init()

    # -- packages in the root ------------------------------------------------------------

    def install(self, packages: Sequence[str]) -> None:
        """apt-get install in the root; local ``.deb`` files are offered to apt too."""
        if not packages:
            raise UsageError("--install needs package names or .deb files")
        names, mounts = _local_debs(packages)
        by_name = [n for n in names if not n.startswith(f"{RUN_DIR}/")]
        if by_name:
            apt.check_package_names(by_name)
        self.services.require_initialized()
        self.services.refresh_lists_if_stale()
        self.services.apt_run(apt.install_command(names), "apt-install", mounts=mounts)
        self.services.write_installed_packages()

    def remove(self, packages: Sequence[str]) -> None:
        """apt-get remove in the root."""
        apt.check_package_names(packages)
        self.services.require_initialized()
        self.services.apt_run(apt.remove_command(packages), "apt-remove")
        self.services.write_installed_packages()

    def update(self, packages: Sequence[str] = ()) -> None:
        """Refresh the lists and upgrade the root (or only ``packages``)."""
        if packages:
            apt.check_package_names(packages)
        if self.config.offline:
            raise UsageError("--update needs the network: it refreshes the package lists (drop --offline)")
        self.services.require_initialized()
        self.services.apt_run(apt.update_command(), "apt-update")
        self.services.apt_run(apt.upgrade_command(packages), "apt-upgrade")
        self._run_hooks("E", "update")
        self.services.write_installed_packages()

    def pm_cmd(self, arguments: Sequence[str], echo: TextIO | None = None) -> None:
        """apt-get with the caller's arguments (mock's ``--pm-cmd``), run as --install runs apt.

        Unlike apt-get in ``--chroot``, it gets the apt cache and its lock, lists
        refreshed when stale, and a new installed-pkgs.log; apt's output is shown,
        since the question asked (``-s install``, what ``autoremove`` takes) is the point.
        """
        if not arguments:
            raise UsageError("--pm-cmd needs apt-get's arguments")
        self.services.require_initialized()
        self.services.refresh_lists_if_stale()
        self.services.apt_run(apt.pm_command(arguments), "apt-pm-cmd", echo=echo)
        self.services.write_installed_packages()

    def installdeps(self, items: Sequence[str]) -> None:
        """Install the build dependencies of source packages (``.dsc`` files or names) into the root."""
        sources = self._sources(items)
        self.services.require_initialized()
        self.services.refresh_lists_if_stale()
        from deb_mock.build_commands import BuildOptions
        from deb_mock.builder import PackageBuilder

        builder = PackageBuilder(self.services, BuildOptions())
        for source in sources:
            builder.install_build_deps_in_root(source)
        self.services.write_installed_packages()

    def _sources(self, items: Sequence[str]) -> list[SourcePackage]:
        """Checked source packages: ``.dsc`` files, or names fetched from the archive (exit 40 if bad)."""
        from deb_mock.source import read_dsc
        from deb_mock.source_fetch import fetch_source

        return [read_dsc(Path(item)) if item.endswith(".dsc") or Path(item).exists()
                else fetch_source(self.services, item, self.paths.top / "sources") for item in items]

    # -- package builds ------------------------------------------------------------------

    def rebuild(self, items: Sequence[str], options: BuildOptions | None = None, *, chain: bool = False,
                keep_going: bool = False) -> list[BuildContext]:
        """Build source packages: ``.dsc`` files, or names (``NAME[=VERSION]``) fetched from the archive.

        Every .dsc is checked before anything is installed (exit 40 if bad).
        """
        if not items:
            raise UsageError("--rebuild needs source packages (.dsc files or names)")
        sources = self._sources(items)
        builder = self._builder(options)
        contexts = builder.build_all(sources, chain=chain, keep_going=keep_going)
        self.result.artifacts = [a for c in contexts for a in c.artifacts]
        return contexts

    def buildsrc(self, tree: Path, options: BuildOptions | None = None) -> list[BuildContext]:
        """Build the source package of an unpacked tree, then its binaries (pdebuild)."""
        if not tree.is_dir():
            raise UsageError(f"--sources {tree}: not a directory")
        builder = self._builder(options)
        source = builder.build_source_package(tree)
        contexts = builder.build_all([source], chain=False, keep_going=False)
        self.result.artifacts = [Artifact.of(f) for f in source.all_files] + \
            [a for c in contexts for a in c.artifacts]
        return contexts

    def _builder(self, options: BuildOptions | None) -> PackageBuilder:
        """The package builder for these options, with the run's --hookdir (builds import it, nothing else)."""
        from deb_mock.build_commands import BuildOptions
        from deb_mock.builder import PackageBuilder

        options = options or BuildOptions()
        if options.hookdir is None and self.options.hookdir is not None:
            options = dataclasses.replace(options, hookdir=self.options.hookdir)
        return PackageBuilder(self.services, options, postinstall=self.install)

    # -- sessions --------------------------------------------------------------------------

    def chroot(self, argv: Sequence[str], echo: TextIO | None = None) -> int:
        """Run a command in the root, its output logged to root.log; return its exit status."""
        root_fs, cwd = self._session_root()
        self.services.require_initialized()
        self._run_hooks("F", "execute", root_fs)
        self.hook.debmock_enter(root=self.services, purpose=Purpose.CHROOT)
        returncode = 1
        try:
            with self.logs.stage("chroot"), self.logs.sink("chroot", echo or sys.stdout) as sink:
                sink.line_to_log_only(f"$ {' '.join(argv)}")
                returncode = self.services.run_in_root(argv, purpose=Purpose.CHROOT, sink=sink, root_fs=root_fs,
                                                       unpriv=self.options.unpriv, cwd=cwd)
        finally:
            self.hook.debmock_exit(root=self.services, purpose=Purpose.CHROOT, returncode=returncode)
        return returncode

    def shell(self, argv: Sequence[str] | None = None) -> int:
        """An interactive shell (or ``argv``) with the caller's terminal; not logged."""
        root_fs, cwd = self._session_root()
        self.services.require_initialized()
        bash = self._exists_in_root("/bin/bash")
        command = list(argv) if argv else ["/bin/bash", "-l"] if bash else ["/bin/sh", "-l"]
        self._run_hooks("F", "login", root_fs)
        self.hook.debmock_enter(root=self.services, purpose=Purpose.SHELL)
        returncode = 1
        try:
            with self.logs.stage("shell"):
                returncode = self.services.run_in_root(command, purpose=Purpose.SHELL, interactive=True,
                                                       root_fs=root_fs, unpriv=self.options.unpriv, cwd=cwd)
        finally:
            self.hook.debmock_exit(root=self.services, purpose=Purpose.SHELL, returncode=returncode)
        return returncode

    def _hookdir(self) -> Path | None:
        return chosen_hookdir(self.options.hookdir, self.config.hooks.hookdir)

    def _run_hooks(self, letter: str, operation: str, root_fs: OverlayRoot | None = None) -> None:
        """pbuilder's hook scripts of ``letter`` (only a run with a hookdir imports the stage runner)."""
        hookdir = self._hookdir()
        if hookdir is not None:
            from deb_mock.stage_runner import run_hook_scripts

            run_hook_scripts(self.services, hookdir, letter, operation, root_fs)

    def _session_root(self) -> tuple[OverlayRoot | None, str]:
        """The root of --chroot/--shell (the kept failed build with --failed-build) and its directory."""
        root_fs, cwd = None, f"/home/{self.config.build_user}" if self.options.unpriv else "/root"
        if self.options.failed_build:
            root_fs, cwd = self.store.failed_build_root()
        return root_fs, self.options.cwd or cwd

    def _exists_in_root(self, path: str) -> bool:
        """Whether ``path`` exists in some layer of the root (a whiteout above it is not considered)."""
        candidates = [self.paths.upper, *(Path(p) for p in self.store.lower_dirs())]
        return any((c / path.lstrip("/")).exists() for c in candidates)

    # -- copying -----------------------------------------------------------------------------

    def copyin(self, sources: Sequence[str], dest: str) -> None:
        """Copy host files or directories into the root (cp -a, owned by root)."""
        copies.check_copy_arguments("copyin", [*sources, dest])
        self.services.require_initialized()
        copies.copy_in(self.services, sources, dest)

    def copyout(self, sources: Sequence[str], dest: str) -> None:
        """Copy files or directories from the root to the host."""
        copies.check_copy_arguments("copyout", [*sources, dest])
        self.services.require_initialized()
        copies.copy_out(self.services, sources, dest)

    # -- cleaning ------------------------------------------------------------------------------

    def clean(self) -> None:
        """Discard every change since the last snapshot (or init); base and snapshots stay."""
        if not self.paths.top.exists():
            return
        self.store.remove_leftovers()
        trash.empty(self.paths.top)
        self.store.drop_failed_build()
        self.store.reset_upper()
        state = self.store.state()
        if state:
            state["upper"] = {}
            self.store.write_state(state)

    def scrub_kinds(self) -> list[str]:
        """Every kind --scrub accepts here."""
        return scrub.scrub_kinds(self._all_plugins.hook)

    def check_scrub_kinds(self, kinds: Sequence[str]) -> None:
        """Refuse unknown --scrub kinds (exit 5) before anything is touched."""
        scrub.check_scrub_kinds(kinds, self.scrub_kinds())

    def scrub(self, kinds: Sequence[str]) -> list[str]:
        """Delete what ``kinds`` name; returns what was removed (for the report)."""
        return scrub.scrub(self.services, kinds, self._all_plugins.hook)

    # -- snapshots (overlay layers; every operation is a rename) -------------------------

    def snapshot(self, name: str) -> None:
        """Freeze the root's current state as snapshot ``name``."""
        self.services.require_initialized()
        with self.logs.stage("snapshot"):
            self.store.snapshot(name)
        self.hook.debmock_snapshot(root=self.services, name=name)

    def _require_existing(self) -> None:
        if not self.store.is_initialized():
            raise UsageError(f"{self.root_id} does not exist yet, so it has no snapshots (--init first)")

    def rollback_to(self, name: str) -> None:
        """Return to snapshot ``name``: later snapshots and changes are dropped."""
        self._require_existing()
        with self.logs.stage("rollback"):
            dropped = self.store.rollback(name)
        if dropped:
            self.console.info(f"dropped the snapshots above {name}: {', '.join(dropped)}")
        self.hook.debmock_rollback(root=self.services, name=name)

    def remove_snapshot(self, name: str) -> None:
        """Delete snapshot ``name`` (refused while anything stands on it)."""
        self._require_existing()
        self.store.remove_snapshot(name)

    def list_snapshots(self) -> list[dict[str, object]]:
        """The snapshots, bottom first."""
        return self.store.snapshots() if self.store.is_initialized() else []


def _make_private(directory: Path, console: Console) -> None:
    """Only deb-mock's user may enter ``directory`` (roots and caches hold setuid files that are root's on disk).

    One cost: apt's download sandbox (user _apt) cannot reach a base being
    bootstrapped below it, so mmdebstrap's downloads run unsandboxed (apt
    says so); the archive's signatures are checked as ever.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.stat()
    if info.st_uid == os.geteuid() and info.st_mode & 0o077:
        directory.chmod(0o700)
        console.info(f"{directory}: made private (mode 0700): roots and caches are for deb-mock's user alone")


def _local_debs(packages: Sequence[str]) -> tuple[list[str], list[Mount]]:
    """Package names as apt gets them: local ``.deb`` files become paths under RUN_DIR, bind-mounted there."""
    names: list[str] = []
    binds: list[Mount] = []
    for index, package in enumerate(packages):
        path = Path(package)
        if package.endswith(".deb") and path.is_file():
            inside = f"{RUN_DIR}/debs/{index}/{path.name}"
            binds.append(Bind(str(path.resolve()), inside, readonly=True))
            names.append(inside)
        elif package.endswith(".deb") and "/" in package:
            raise UsageError(f"{package}: no such .deb file")
        else:
            names.append(package)
    return names, with_run_dir(*binds) if binds else []


__all__ = ["Root", "RunOptions"]
