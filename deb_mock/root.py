"""Root: the public Python API of deb-mock.

A Root is one named, isolated Debian tree (config name plus optional
uniqueext). It orchestrates: it asks plugins at fixed points (hooks), lets
the layer store say which directories make up the tree, and runs every
command that touches the tree inside the sandbox. The CLI only parses
arguments and calls these methods; an orchestrator can do the same::

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
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import pluggy

from deb_mock import apt, bootstrap, orphans
from deb_mock.build import BuildOptions
from deb_mock.config import Config, LoadedConfig
from deb_mock.depslayers import BuildDepsCache
from deb_mock.errors import (
    AptError,
    BootstrapError,
    DebMockError,
    ExitCode,
    Interrupted,
    ResultDirError,
    RootError,
    UsageError,
)
from deb_mock.layers import LayerStore, RootPaths, remove_tree
from deb_mock.locks import root_lock
from deb_mock.logs import Console, RunLogs, StageOutput
from deb_mock.result import Artifact, RunResult
from deb_mock.sandbox.runner import (
    LineSplitter,
    OutputSink,
    run_captured,
    run_interactive,
    start_keeper,
    stop_keeper,
)
from deb_mock.sandbox.spec import (
    DEFAULT_PATH,
    Bind,
    DirectoryRoot,
    Mount,
    OverlayRoot,
    RootFs,
    SandboxSpec,
    Tmpfs,
)

if TYPE_CHECKING:
    from deb_mock.builder import BuildContext

#: where per-run helper mounts (copyin sources, local .debs) appear inside the root
RUN_DIR = "/run/deb-mock"
#: copy into a directory that is created when missing ($1 = directory, then the sources)
COPY_INTO_DIR = 'set -e; d=$1; shift; mkdir -p -- "$d"; exec cp -a --no-preserve=ownership -- "$@" "$d"'
#: copy one source to a path: into it if it is a directory, else as that name
COPY_TO_PATH = (
    'set -e; d=$1; shift; if [ -d "$d" ]; then exec cp -a --no-preserve=ownership -- "$1" "$d"; fi; '
    'mkdir -p -- "$(dirname -- "$d")"; exec cp -a --no-preserve=ownership -T -- "$1" "$d"'
)
#: --scrub kinds handled by the core; plugins add theirs
CORE_SCRUB_KINDS = ("chroot", "snapshots", "build-deps-cache", "cache", "results", "all")


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Per-run choices that are not configuration (they come from the command line)."""

    uniqueext: str | None = None
    resultdir: Path | None = None
    lock_timeout: float | None = None
    unpriv: bool = False
    cwd: str | None = None
    enable_network: bool = False


class Root:
    """One deb-mock root and everything a run can do with it."""

    def __init__(
        self,
        loaded: LoadedConfig,
        plugins: pluggy.PluginManager,
        console: Console,
        options: RunOptions | None = None,
    ) -> None:
        self.loaded = loaded
        self.config: Config = loaded.config
        self.options = options or RunOptions()
        self.console = console
        self.plugins = plugins
        self.hook = plugins.hook
        if self.options.uniqueext is not None and not re.match(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$",
                                                                self.options.uniqueext):
            raise UsageError(f"--uniqueext '{self.options.uniqueext}': use letters, digits and . _ + - only")
        suffix = f"-{self.options.uniqueext}" if self.options.uniqueext else ""
        self.root_id = f"{self.config.name}{suffix}"
        self.paths = RootPaths(Path(self.config.basedir) / self.root_id)
        self.store = LayerStore(self.paths)
        configured = Path(self.config.resultdir) if self.config.resultdir else None
        self.resultdir = self.options.resultdir or configured or self.paths.default_resultdir
        self.logs = RunLogs(self.resultdir, console)
        self.marker = str(self.paths.top)
        self.result = RunResult(mode="", root=self.root_id)
        #: per-run state of plugins (lock handles and the like), by plugin name
        self.plugin_state: dict[str, Any] = {}
        self._architecture_checked = False
        #: the run's session keeper (see _start_session_namespace) and whether scratch uppers are in RAM
        self._keeper: subprocess.Popen[bytes] | None = None
        self._session_pid: int | None = None
        self.scratch_in_ram = False

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
        with root_lock(self.paths.lock_file, mode, timeout, self.console.warn):
            yield

    @contextlib.contextmanager
    def session(self, mode: str) -> Iterator[RunResult]:
        """One run: the lock, the result directory, configure hooks, and result.json at the end.

        The yielded result's exit code and error are filled in from an exception
        that leaves the block; its durations come from the stages that ran.
        """
        self.result = RunResult(mode=mode, root=self.root_id, config_digest=self.loaded.digest,
                                resultdir=str(self.resultdir))
        with self.locked(f"--{mode.replace('_', '-')}"):
            self.prepare_resultdir()
            try:
                self.hook.debmock_configure(root=self)
                self._start_session_namespace()
                yield self.result
            except DebMockError as exc:
                self.result.exit_code, self.result.error = int(exc.exit_code), exc.message
                raise
            except KeyboardInterrupt:
                self.result.exit_code, self.result.error = int(ExitCode.INTERRUPTED), "interrupted"
                raise Interrupted("interrupted: the run was stopped and its sandbox removed") from None
            except BaseException as exc:
                self.result.exit_code, self.result.error = int(ExitCode.ERROR), f"{type(exc).__name__}: {exc}"
                raise
            finally:
                self.result.durations = self.logs.durations
                try:
                    self.hook.debmock_process_logs(root=self, result=self.result)
                finally:
                    self.hook.debmock_unconfigure(root=self)
                    if self._keeper is not None:
                        stop_keeper(self._keeper)
                        self._keeper, self._session_pid = None, None
                    if self.resultdir.is_dir():
                        self.result.write(self.resultdir)

    # -- the run's session namespace and scratch space -------------------------------------

    def _start_session_namespace(self) -> None:
        """Mount what plugins want for the whole run (a tmpfs for scratch uppers) in a kept namespace."""
        mounts = [m for ms in self.hook.debmock_session_mounts(root=self) for m in ms]
        if not mounts:
            return
        for mount in mounts:
            Path(mount.target).mkdir(parents=True, exist_ok=True)
        spec = SandboxSpec(argv=("sleep", "infinity"), root=None, env={"PATH": DEFAULT_PATH}, network=True,
                           hostname=self.config.sandbox.hostname, host_mounts=tuple(mounts),
                           marker=f"{self.marker}#session")
        self._keeper, self._session_pid = start_keeper(spec)
        self.scratch_in_ram = any(m.target == str(self.paths.top / "scratch") for m in mounts)

    def new_scratch(self, name: str, lowers: tuple[str, ...] | None = None) -> OverlayRoot:
        """A fresh throw-away upper (a clean build's root); in RAM when the tmpfs plugin says so."""
        self.discard_scratch(name)
        return self.store.scratch_overlay(name, lowers)

    def discard_scratch(self, name: str) -> None:
        """Delete a throw-away upper, in the run's RAM too."""
        self.store.drop_scratch(name)
        if self.scratch_in_ram:
            self.run_on_host(["rm", "-rf", "--", str(self.paths.top / "scratch" / name)], _Collector())

    def run_on_host(self, argv: Sequence[str], sink: OutputSink, network: bool = False) -> int:
        """Run a host tool (mmdebstrap, tar) in new namespaces without a chroot, in the run's session.

        Its mounts (mmdebstrap's /proc in the target, say) stay in its own mount
        namespace, and it dies with deb-mock like every sandboxed command.
        """
        spec = SandboxSpec(argv=tuple(argv), root=None, env=self._host_env(), network=network,
                           hostname=self.config.sandbox.hostname, marker=self.marker,
                           join_mount_ns=self._session_pid)
        return run_captured(spec, sink)

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
            recorded = self.store.state()["base"].get("bootstrap_digest")
            if recorded and recorded != digest:
                self.console.warn(f"{self.root_id} was bootstrapped with other settings than the config has now; "
                                  "--scrub=chroot and --init to apply them")
            self.store.ensure_upper()
            return False
        self.paths.top.mkdir(parents=True, exist_ok=True)
        self.store.remove_leftovers()
        incoming = self.paths.incoming_base()
        incoming.mkdir(mode=0o755)
        try:
            self._check_architecture()
            with self.logs.stage("restore"):
                content_id = self.hook.debmock_root_restore(root=self, target=incoming)
            if content_id is None:
                self.logs.durations.pop("restore", None)
                with self.logs.stage("bootstrap"):
                    if not self.hook.debmock_root_bootstrap(root=self, target=incoming):
                        self._mmdebstrap(incoming)
                with self.logs.stage("prepare"):
                    self._prepare_base(incoming)
            else:
                self.console.info(f"restored {self.root_id} from the root cache (no bootstrap)")
            self.store.commit_base(incoming, {
                "bootstrap_digest": digest, "config_digest": self.loaded.digest,
                "restored": content_id is not None, "content_id": content_id or f"local-{uuid.uuid4()}",
                "suite": self.config.suite, "architecture": self.config.architecture,
            })
        except BaseException:
            remove_tree(incoming)
            raise
        self.write_installed_packages()
        self.hook.debmock_root_initialized(root=self, restored=content_id is not None)
        return True

    def update_base_info(self, **fields: object) -> None:
        """Record facts about the base in state.json (root_cache: ``content_id``, ``lists_updated``)."""
        state = self.store.state()
        state["base"].update(fields)
        self.store.write_state(state)

    @property
    def base_content_id(self) -> str:
        """The base's content id (equal for every root restored from the same root cache)."""
        return str(self.store.state().get("base", {}).get("content_id", ""))

    def _check_architecture(self) -> None:
        """Foreign architectures need qemu-user and binfmt_misc (which do not survive a reboot)."""
        if self._architecture_checked:
            return
        note = bootstrap.ensure_foreign_arch_support(self.config.architecture)
        if note:
            self.console.info(note)
        self._architecture_checked = True

    def _mmdebstrap(self, target: Path) -> None:
        extra = [arg for args in self.hook.debmock_bootstrap_args(root=self) for arg in args]
        extra += bootstrap.unsafe_io_args(self.config)
        argv = bootstrap.mmdebstrap_command(self.config, target, extra)
        self.console.info(f"bootstrapping {self.config.suite}/{self.config.architecture} "
                          f"({self.config.variant}) with mmdebstrap")
        with self.logs.sink("bootstrap") as sink:
            returncode = self.run_on_host(argv, sink, network=not self.config.offline)
        if returncode != 0:
            tail = "\n".join(line for line in sink.tail[-15:] if line.strip())
            raise BootstrapError(f"mmdebstrap failed with exit code {returncode}:\n{tail}",
                                 hint=f"the whole output is in {self.logs.root_log}")

    def _prepare_base(self, tree: Path) -> None:
        """Sources, apt settings, the build user and fresh package lists in a new base."""
        bootstrap.configure_sources(tree, self.config)
        root_fs = self._bare_tree(tree)
        user, uid = self.config.build_user, str(self.config.build_uid)
        for argv in (
            ["groupadd", "--gid", uid, user],
            ["useradd", "--uid", uid, "--gid", uid, "--create-home", "--shell", "/bin/bash", user],
            ["install", "-d", "-o", user, "-g", user, "-m", "0755", "/build"],
        ):
            self.checked_run(argv, "prepare", root_fs=root_fs, network=False)
        # mmdebstrap keeps its lists (--skip=cleanup/apt/lists); only sources added here need new ones
        if not self.config.offline and (self.config.deb_src or self.config.extra_sources):
            self.apt_run(apt.update_command(), "apt-update", root_fs=root_fs)

    # -- running commands --------------------------------------------------------------

    def require_initialized(self) -> None:
        """Initialise on first use, as mock does for --install, --chroot and friends."""
        if not self.store.is_initialized():
            self.console.info(f"root {self.root_id} is not initialised yet: initialising it")
            self.init()

    def network_for(self, purpose: str) -> bool:
        """Whether a sandbox entry for ``purpose`` gets the host's network."""
        if self.config.offline:
            return False
        if self.options.enable_network:
            return True
        if purpose in ("apt", "init"):
            return True
        if purpose in ("chroot", "shell"):
            return self.config.sandbox.network
        return False

    def sandbox_spec(
        self,
        argv: Sequence[str],
        *,
        purpose: str,
        root_fs: RootFs | None = None,
        unpriv: bool = False,
        cwd: str = "/",
        env: dict[str, str] | None = None,
        mounts: Sequence[Mount] = (),
        network: bool | None = None,
    ) -> SandboxSpec:
        """The sandbox for one command in this root (plugins add their mounts)."""
        plugin_mounts = [m for ms in self.hook.debmock_mounts(root=self, purpose=purpose) for m in ms]
        uid = self.config.build_uid if unpriv else 0
        tmpfs_tmp = self.config.sandbox.tmpfs_tmp
        return SandboxSpec(
            argv=tuple(argv),
            root=root_fs or self.store.overlay(),
            env={**self._root_env(unpriv), **(env or {})},
            cwd=cwd,
            uid=uid,
            gid=uid,
            network=self.network_for(purpose) if network is None else network,
            hostname=self.config.sandbox.hostname,
            mounts=(*plugin_mounts, *mounts),
            sys=self.config.sandbox.sys,
            tmp_size=self.config.sandbox.tmp_size,
            tmpfs_tmp=tmpfs_tmp == "always" or (tmpfs_tmp == "build" and purpose == "build"),
            marker=self.marker,
            join_mount_ns=self._session_pid,
        )

    def run_in_root(
        self,
        argv: Sequence[str],
        *,
        purpose: str,
        sink: OutputSink | None = None,
        interactive: bool = False,
        **spec_options: object,
    ) -> int:
        """Run ``argv`` in the root's sandbox and return its exit status."""
        spec = self.sandbox_spec(argv, purpose=purpose, **spec_options)  # type: ignore[arg-type]
        if spec.root is not None:
            self._check_architecture()
        orphans.wait_for_exit(self.marker)
        if interactive:
            return run_interactive(spec)
        if sink is None:
            raise UsageError("run_in_root needs a sink unless interactive")
        return run_captured(spec, sink)

    def checked_run(self, argv: Sequence[str], stage: str, *, root_fs: RootFs | None = None,
                    network: bool | None = None, unpriv: bool = False, mounts: Sequence[Mount] = (),
                    env: dict[str, str] | None = None, keep: int = 200) -> list[str]:
        """Run a helper command in the root, logged to root.log; a failure is a RootError (exit 20).

        Returns the command's last ``keep`` output lines.
        """
        with self.logs.sink(stage, keep=keep) as sink:
            returncode = self.run_in_root(argv, purpose=stage, sink=sink, root_fs=root_fs, network=network,
                                          unpriv=unpriv, mounts=mounts, env=env)
        if returncode != 0:
            tail = "\n".join(sink.tail[-10:])
            raise RootError(f"'{' '.join(argv)}' failed in the root with exit code {returncode}:\n{tail}")
        return sink.tail

    def _root_env(self, unpriv: bool) -> dict[str, str]:
        user = self.config.build_user if unpriv else "root"
        home = f"/home/{user}" if unpriv else "/root"
        env = {
            "PATH": DEFAULT_PATH,
            "HOME": home,
            "USER": user,
            "LOGNAME": user,
            "SHELL": "/bin/bash",
            "LANG": "C.UTF-8",
            "TERM": os.environ.get("TERM", "dumb"),
            "DEB_MOCK_ROOT": self.marker,
            "PS1": f"<deb-mock:{self.root_id}> \\w \\$ ",
        }
        env.update(self.config.sandbox.environment)
        return env

    def _host_env(self) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", DEFAULT_PATH), "LANG": "C.UTF-8",
               "HOME": "/root", "DEB_MOCK_ROOT": self.marker}
        for key in ("http_proxy", "https_proxy", "no_proxy", "TMPDIR"):
            if key in os.environ:
                env[key] = os.environ[key]
        return env

    # -- apt -------------------------------------------------------------------------------

    def apt_run(self, argv: list[str], stage: str, root_fs: RootFs | None = None,
                mounts: Sequence[Mount] = (), env: dict[str, str] | None = None) -> list[str]:
        """Run apt in the root (or in ``root_fs``), between the pre/post apt hooks; exit 30 on failure.

        Returns apt's output lines.
        """
        options = list(self.config.apt_options)
        if isinstance(root_fs, OverlayRoot) and root_fs.upper != str(self.paths.upper):
            options.append("Dpkg::Options::=--force-unsafe-io")  # a disposable layer: no fsync per file
        if options and "apt-get" in argv:
            at = argv.index("apt-get") + 1
            argv = [*argv[:at], *(x for o in options for x in ("-o", o)), *argv[at:]]
        self.hook.debmock_pre_apt(root=self, argv=argv)
        with self.logs.stage(stage), self.logs.sink(stage, keep=100_000) as sink:
            returncode = self.run_in_root(argv, purpose="apt", sink=sink, root_fs=root_fs,
                                          env={**apt.APT_ENV, **(env or {})}, mounts=mounts)
        self.hook.debmock_post_apt(root=self, argv=argv, returncode=returncode)
        if returncode != 0:
            start = argv.index("apt-get") if "apt-get" in argv else 0
            words = " ".join(a for a in argv[start:] if not a.startswith("-") and "::" not in a)
            raise AptError(f"{words} failed "
                           f"(exit code {returncode}):\n{apt.explain_failure(sink.tail)}",
                           hint=f"apt's whole output is in {self.logs.root_log}")
        if "update" in argv and root_fs is None:
            state = self.store.state()
            state["upper"] = {**state.get("upper", {}), "apt_updated": time.time()}
            self.store.write_state(state)
        return sink.tail

    def lists_are_stale(self, scratch: bool = False) -> bool:
        """Whether apt's lists are older than ``apt_lists_max_age`` (never when offline).

        ``scratch``: for a throw-away upper over the base, whose lists are the base's.
        """
        if self.config.offline:
            return False
        state = self.store.state()
        base = state.get("base", {})
        updated = base.get("lists_updated", base.get("created", 0.0))
        if not scratch:
            updated = max(updated, state.get("upper", {}).get("apt_updated", 0.0))
        return bool(time.time() - updated > self.config.apt_lists_max_age * 60)

    def lists_stamp(self) -> str:
        """When the base's package lists were fetched (they change only with a new base)."""
        base = self.store.state().get("base", {})
        return str(base.get("lists_updated", base.get("created", "")))

    def refresh_base_lists(self) -> None:
        """``apt-get update`` in the base itself, so that this and every later clean build find current lists.

        Package lists are apt's view of the archive, not installed software:
        refreshing them in the base changes no build's starting state except
        which versions apt picks, which is what a refresh is for. It runs under
        the root's lock with no overlay mounted, so nothing stands on the base
        meanwhile. (Refreshing in each build's throw-away upper instead cost every
        build after ``apt_lists_max_age`` an update and a resolution.)
        """
        self.apt_run(apt.update_command(), "apt-update", root_fs=self._bare_tree(self.paths.base))
        self.update_base_info(lists_updated=time.time())

    def _bare_tree(self, tree: Path) -> DirectoryRoot:
        """``tree`` itself as the root of sandbox entries (no overlay): for a base being made or refreshed."""
        self.paths.mountpoint.mkdir(exist_ok=True)
        return DirectoryRoot(str(tree), str(self.paths.mountpoint))

    def _refresh_lists_if_stale(self) -> None:
        if self.lists_are_stale():
            self.apt_run(apt.update_command(), "apt-update")

    def install(self, packages: Sequence[str]) -> None:
        """apt-get install in the root; local ``.deb`` files are offered to apt too."""
        if not packages:
            raise UsageError("--install needs package names or .deb files")
        names, mounts = self._local_debs(packages)
        by_name = [n for n in names if not n.startswith(f"{RUN_DIR}/")]
        if by_name:
            apt.check_package_names(by_name)
        self.require_initialized()
        self._refresh_lists_if_stale()
        self.apt_run(apt.install_command(names), "apt-install", mounts=mounts)
        self.write_installed_packages()

    def remove(self, packages: Sequence[str]) -> None:
        """apt-get remove in the root."""
        apt.check_package_names(packages)
        self.require_initialized()
        self.apt_run(apt.remove_command(packages), "apt-remove")
        self.write_installed_packages()

    def update(self, packages: Sequence[str] = ()) -> None:
        """Refresh the lists and upgrade the root (or only ``packages``)."""
        if packages:
            apt.check_package_names(packages)
        if self.config.offline:
            raise UsageError("--update needs the network: it refreshes the package lists (drop --offline)")
        self.require_initialized()
        self.apt_run(apt.update_command(), "apt-update")
        self.apt_run(apt.upgrade_command(packages), "apt-upgrade")
        self.write_installed_packages()

    def _local_debs(self, packages: Sequence[str]) -> tuple[list[str], list[Mount]]:
        names: list[str] = []
        mounts: list[Mount] = []
        for index, package in enumerate(packages):
            path = Path(package)
            if package.endswith(".deb") and path.is_file():
                if not mounts:
                    mounts.append(Tmpfs(RUN_DIR, size="1M"))
                inside = f"{RUN_DIR}/debs/{index}/{path.name}"
                mounts.append(Bind(str(path.resolve()), inside, readonly=True))
                names.append(inside)
            elif package.endswith(".deb") and "/" in package:
                raise UsageError(f"{package}: no such .deb file")
            else:
                names.append(package)
        return names, mounts

    def write_installed_packages(self, root_fs: RootFs | None = None, resultdir: Path | None = None) -> None:
        """installed-pkgs.log: every package of the root (or of ``root_fs``) with its version."""
        collector = _Collector()
        returncode = self.run_in_root(apt.installed_packages_command(), purpose="query",
                                      sink=collector, network=False, root_fs=root_fs)
        if returncode != 0:
            self.console.warn("could not list the installed packages: " + " ".join(collector.lines[-3:]))
            return
        lines = sorted(line for line in collector.lines if line.strip())
        target = (resultdir or self.resultdir) / "installed-pkgs.log"
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")

    # -- package builds ------------------------------------------------------------------

    def rebuild(self, items: Sequence[str], options: BuildOptions | None = None, *, chain: bool = False,
                keep_going: bool = False) -> list[BuildContext]:
        """Build source packages: ``.dsc`` files, or names (``NAME[=VERSION]``) fetched from the archive.

        Every .dsc is checked before anything is installed (exit 40 if bad).
        """
        from deb_mock.builder import PackageBuilder, fetch_source
        from deb_mock.source import read_dsc

        options = options or BuildOptions()
        if not items:
            raise UsageError("--rebuild needs source packages (.dsc files or names)")
        sources = []
        for item in items:
            if item.endswith(".dsc") or Path(item).exists():
                sources.append(read_dsc(Path(item)))
            else:
                sources.append(fetch_source(self, item, self.paths.top / "sources"))
        builder = PackageBuilder(self, options)
        contexts = builder.build_all(sources, chain=chain, keep_going=keep_going)
        self.result.artifacts = [a for c in contexts for a in c.artifacts]
        return contexts

    def buildsrc(self, tree: Path, options: BuildOptions | None = None) -> list[BuildContext]:
        """Build the source package of an unpacked tree, then its binaries (pdebuild)."""
        from deb_mock.builder import PackageBuilder, build_source_package

        options = options or BuildOptions()
        if not tree.is_dir():
            raise UsageError(f"--sources {tree}: not a directory")
        source = build_source_package(self, tree, options)
        contexts = PackageBuilder(self, options).build_all([source], chain=False, keep_going=False)
        self.result.artifacts = [Artifact.of(f) for f in source.all_files] + \
            [a for c in contexts for a in c.artifacts]
        return contexts

    # -- sessions --------------------------------------------------------------------------

    def chroot(self, argv: Sequence[str], echo: TextIO | None = None) -> int:
        """Run a command in the root, its output logged to root.log; return its exit status."""
        self.require_initialized()
        self.hook.debmock_enter(root=self, purpose="chroot")
        returncode = 1
        try:
            with self.logs.stage("chroot"), self.logs.sink("chroot", echo or sys.stdout) as sink:
                sink.line_to_log_only(f"$ {' '.join(argv)}")
                returncode = self.run_in_root(argv, purpose="chroot", sink=sink,
                                              unpriv=self.options.unpriv, cwd=self._cwd())
        finally:
            self.hook.debmock_exit(root=self, purpose="chroot", returncode=returncode)
        return returncode

    def shell(self, argv: Sequence[str] | None = None) -> int:
        """An interactive shell (or ``argv``) with the caller's terminal; not logged."""
        self.require_initialized()
        command = list(argv) if argv else ["/bin/bash", "-l"] if self._has("/bin/bash") else ["/bin/sh", "-l"]
        self.hook.debmock_enter(root=self, purpose="shell")
        returncode = 1
        try:
            with self.logs.stage("shell"):
                returncode = self.run_in_root(command, purpose="shell", interactive=True,
                                              unpriv=self.options.unpriv, cwd=self._cwd())
        finally:
            self.hook.debmock_exit(root=self, purpose="shell", returncode=returncode)
        return returncode

    def _cwd(self) -> str:
        if self.options.cwd:
            return self.options.cwd
        return f"/home/{self.config.build_user}" if self.options.unpriv else "/root"

    def _has(self, path: str) -> bool:
        candidates = [self.paths.upper, *(Path(p) for p in self.store.lower_dirs())]
        return any((c / path.lstrip("/")).exists() for c in candidates)

    # -- copying -----------------------------------------------------------------------------

    def copyin(self, sources: Sequence[str], dest: str) -> None:
        """Copy host files or directories into the root (cp -a, owned by root)."""
        self.require_initialized()
        mounts: list[Mount] = [Tmpfs(RUN_DIR, size="1M")]
        inside: list[str] = []
        for index, source in enumerate(sources):
            path = Path(source)
            if not path.exists():
                raise UsageError(f"--copyin: {source}: no such file or directory")
            target = f"{RUN_DIR}/in/{index}/{path.resolve().name}"
            mounts.append(Bind(str(path.resolve()), target, readonly=True))
            inside.append(target)
        if not dest.startswith("/"):
            raise UsageError(f"--copyin: destination '{dest}' must be an absolute path in the root")
        into_dir = len(sources) > 1 or dest.endswith("/")
        # A fixed script; the paths reach it as arguments, never as shell text.
        script = COPY_INTO_DIR if into_dir else COPY_TO_PATH
        self._copy(["/bin/sh", "-c", script, "sh", dest, *inside], mounts, "copyin")

    def copyout(self, sources: Sequence[str], dest: str) -> None:
        """Copy files or directories from the root to the host."""
        self.require_initialized()
        for source in sources:
            if not source.startswith("/"):
                raise UsageError(f"--copyout: '{source}' must be an absolute path in the root")
        host = Path(dest)
        into_dir = len(sources) > 1 or dest.endswith("/") or host.is_dir()
        try:
            if into_dir:
                host.mkdir(parents=True, exist_ok=True)
                mount_dir, name = host.resolve(), ""
            else:
                host.parent.mkdir(parents=True, exist_ok=True)
                mount_dir, name = host.parent.resolve(), host.name
        except OSError as exc:
            raise UsageError(f"--copyout: cannot create {dest}: {exc.strerror}") from None
        mounts: list[Mount] = [Tmpfs(RUN_DIR, size="1M"), Bind(str(mount_dir), f"{RUN_DIR}/out", readonly=False)]
        target = f"{RUN_DIR}/out/{name}" if name else f"{RUN_DIR}/out/"
        # -H: a symlink named on the command line (/etc/os-release) is copied as its target
        flags = ["-a", "-H", "--no-preserve=ownership"] + ([] if into_dir else ["-T"])
        self._copy(["cp", *flags, "--", *sources, target], mounts, "copyout")

    def _copy(self, argv: list[str], mounts: list[Mount], stage: str) -> None:
        with self.logs.stage(stage), self.logs.sink(stage) as sink:
            returncode = self.run_in_root(argv, purpose="copy", sink=sink, mounts=mounts)
        if returncode != 0:
            raise RootError(f"--{stage} failed: " + ("\n".join(sink.tail[-5:]) or f"exit code {returncode}"))

    # -- cleaning ------------------------------------------------------------------------------

    def clean(self) -> None:
        """Discard every change since the last snapshot (or init); base and snapshots stay."""
        if not self.paths.top.exists():
            return
        self.store.remove_leftovers()
        self.store.reset_upper()
        state = self.store.state()
        if state:
            state["upper"] = {}
            self.store.write_state(state)

    # -- snapshots (overlay layers; every operation is a rename) -------------------------

    def snapshot(self, name: str) -> None:
        """Freeze the root's current state as snapshot ``name``."""
        self.require_initialized()
        with self.logs.stage("snapshot"):
            self.store.snapshot(name)
        self.hook.debmock_snapshot(root=self, name=name)

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
        self.hook.debmock_rollback(root=self, name=name)

    def remove_snapshot(self, name: str) -> None:
        """Delete snapshot ``name`` (refused while anything stands on it)."""
        self._require_existing()
        self.store.remove_snapshot(name)

    def list_snapshots(self) -> list[dict[str, object]]:
        """The snapshots, bottom first."""
        return self.store.snapshots() if self.store.is_initialized() else []

    def scrub_kinds(self) -> list[str]:
        """Every kind --scrub accepts here."""
        kinds = list(CORE_SCRUB_KINDS)
        for extra in self._all_plugins().hook.debmock_scrub_kinds():
            kinds.extend(k for k in extra if k not in kinds)
        return kinds

    def _all_plugins(self) -> pluggy.PluginManager:
        """Every plugin, enabled or not: a disabled plugin's cache can still be scrubbed."""
        from deb_mock.plugin_manager import make_plugin_manager

        return make_plugin_manager()

    def check_scrub_kinds(self, kinds: Sequence[str]) -> None:
        """Refuse unknown --scrub kinds (exit 5) before anything is touched."""
        known = self.scrub_kinds()
        if not kinds:
            raise UsageError(f"--scrub needs a kind ({', '.join(known)})")
        for kind in kinds:
            if kind not in known:
                raise UsageError(f"--scrub: unknown kind '{kind}' (known: {', '.join(known)})")

    def scrub(self, kinds: Sequence[str]) -> list[str]:
        """Delete what ``kinds`` name; returns what was removed (for the report)."""
        self.check_scrub_kinds(kinds)
        selected = frozenset(kinds)
        removed: list[str] = []
        if selected & {"chroot", "all"} and self.paths.top.exists():
            for entry in sorted(self.paths.top.iterdir()):
                if entry != self.resultdir and entry.name != "result":
                    remove_tree(entry)
            removed.append(str(self.paths.top))
        if "snapshots" in selected and not selected & {"chroot", "all"} and self.store.is_initialized():
            self.store.drop_all_snapshots()
            removed.append(str(self.paths.layers))
        if selected & {"build-deps-cache", "cache", "all"}:
            deps_cache = BuildDepsCache.of(self)
            report = deps_cache.scrub()
            if report.removed:
                removed.append(str(deps_cache.directory))
            if report.in_use:
                self.console.warn(f"{report.in_use} build-deps layer(s) in use by running builds: no longer "
                                  "reused, deleted once those builds end (by the next build that saves a layer "
                                  "or the next scrub)")
        default_results = self.paths.default_resultdir
        if selected & {"results", "all"} and default_results.exists():
            remove_tree(default_results)  # never a --resultdir of the user's: it may hold anything
            removed.append(str(default_results))
        if "all" in selected and self.paths.top.exists() and not any(self.paths.top.iterdir()):
            self.paths.top.rmdir()
        self._all_plugins().hook.debmock_scrub(root=self, kinds=selected)
        return removed


class _Collector(LineSplitter):
    """An output sink that keeps every line (for long listings)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)


__all__ = ["Root", "RunOptions", "StageOutput"]
