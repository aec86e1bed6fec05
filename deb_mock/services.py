"""Running things in a root: what builds, the base's set-up and plugins receive (never Root itself).

:class:`RootServices` is the one object every plugin hook gets as ``root``,
and the only way the builder, the base's set-up and plugins touch a root:
it turns "run this command in the root" into a sandbox spec (mounts, network,
user and environment chosen by the entry's :class:`Purpose`), runs it, logs it,
and keeps the run's session (scratch uppers, possibly in RAM). It knows
nothing of the CLI, of Root's verbs, or of other plugins.

The members plugins may use, and nothing else:

- facts: ``config``, ``root_id``, ``paths``, ``store`` (the layer store and the
  base's record), ``resultdir``, ``logs``, ``console``, ``result`` (the run's
  result; plugins may add to ``result.extra`` and ``result.artifacts``),
  ``plugin_state`` (per-run state of plugins, by plugin name);
- running: ``run_in_root``, ``checked_run``, ``apt_run``, ``run_on_host``;
- outputs: ``outbox`` (a directory commands write results into, delivered
  without privileges);
- the root's state: ``require_initialized``, ``lists_are_stale``,
  ``refresh_lists_if_stale``, ``new_scratch``, ``discard_scratch``, and
  ``tool_root`` (a throw-away root with checkers such as lintian installed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import pluggy

from deb_mock import apt, dpkg_status, orphans, trash, userns
from deb_mock.build_deps_cache import BuildDepsCache
from deb_mock.config import Config
from deb_mock.errors import AptError, RootError, UsageError
from deb_mock.fileio import deliver_tree
from deb_mock.foreign_arch import ensure_foreign_arch_support
from deb_mock.layerstore import LayerStore, RootPaths, remove_tree
from deb_mock.logs import Console, RunLogs
from deb_mock.result import RunResult
from deb_mock.sandbox.runner import LineCollector, OutputSink, run_captured, run_interactive, start_keeper, stop_keeper
from deb_mock.sandbox.spec import (
    DEFAULT_PATH,
    ROOT_CAPABILITIES,
    Bind,
    DirectoryRoot,
    Mount,
    OverlayRoot,
    RootFs,
    SandboxSpec,
    capability_numbers,
)
from deb_mock.spread_dirs import mark_top_of_hierarchy


class Purpose(enum.StrEnum):
    """What a sandbox entry is for; it decides the network and /tmp, and plugins' mounts see it."""

    #: making a base (bootstrap, prepare): the network unless offline
    INIT = "init"
    #: apt in the root: the network unless offline
    APT = "apt"
    #: --chroot: the network only if the config's sandbox.network says so
    CHROOT = "chroot"
    #: --shell: as CHROOT, with the caller's terminal
    SHELL = "shell"
    #: --copyin/--copyout
    COPY = "copy"
    #: dpkg-buildpackage and the build's own steps: never the network unless asked
    BUILD = "build"
    #: a build's stage commands and hook scripts (as root; the network is chosen by their stage)
    HOOK = "hook"
    #: reading the root (installed packages, statistics)
    QUERY = "query"
    #: a helper step deb-mock or a plugin runs (unpack, collect results, image tools)
    HELPER = "helper"


@dataclasses.dataclass(frozen=True)
class RootIdentity:
    """Where a root lives and what it is called (one config plus an optional uniqueext)."""

    root_id: str
    paths: RootPaths
    resultdir: Path


class RootServices:
    """Running commands in one root, for one run."""

    def __init__(
        self,
        config: Config,
        identity: RootIdentity,
        hook: pluggy.HookRelay,
        console: Console,
        *,
        enable_network: bool = False,
        initializer: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.root_id = identity.root_id
        self.paths = identity.paths
        self.resultdir = identity.resultdir
        self.store = LayerStore(self.paths)
        self.logs = RunLogs(self.resultdir, console)
        self.console = console
        self.hook = hook
        self.result = RunResult(mode="", root=self.root_id)
        #: per-run state of plugins (lock handles and the like), by plugin name
        self.plugin_state: dict[str, Any] = {}
        #: put into every sandboxed process's environment; --orphanskill finds the root's processes by it
        self.process_tag = str(self.paths.top)
        #: whether a run of this root may have left processes that are still dying: true until the root's lock
        #: says its last holder released it (then its sandboxes were all reaped), and after a stopped command
        self.orphans_possible = True
        self.scratch_in_ram = False
        self._enable_network = enable_network
        self._initializer = initializer
        self._architecture_checked = False
        self._keeper: subprocess.Popen[bytes] | None = None
        self._session_pid: int | None = None
        self._id_map: tuple[int, int, int] | None = None

    # -- the root's state ------------------------------------------------------------------

    def require_initialized(self) -> None:
        """Initialise the root on first use, as mock does for --install, --chroot and friends."""
        if self.store.is_initialized():
            return
        if self._initializer is None:
            raise RootError(f"{self.root_id} is not initialised (--init first)")
        self.console.info(f"root {self.root_id} is not initialised yet: initialising it")
        self._initializer()

    def check_architecture(self) -> None:
        """Foreign architectures need qemu-user and binfmt_misc (which do not survive a reboot)."""
        if self._architecture_checked:
            return
        note = ensure_foreign_arch_support(self.config.architecture)
        if note:
            self.console.info(note)
        self._architecture_checked = True

    # -- the run's session namespace and scratch space -------------------------------------

    def start_session(self) -> None:
        """Mount what plugins want for the whole run (a tmpfs for scratch uppers) in a kept namespace."""
        mounts = [m for ms in self.hook.debmock_session_mounts(root=self) for m in ms]
        if not mounts:
            return
        for mount in mounts:
            Path(mount.target).mkdir(parents=True, exist_ok=True)
        spec = SandboxSpec(argv=("sleep", "infinity"), root=None, env={"PATH": DEFAULT_PATH}, network=True,
                           hostname=self.config.sandbox.hostname, host_mounts=tuple(mounts),
                           marker=f"{self.process_tag}#session")
        self._keeper, self._session_pid = start_keeper(spec)
        self.scratch_in_ram = any(m.target == str(self.paths.top / "scratch") for m in mounts)

    def stop_session(self) -> None:
        """End the session's namespace (its RAM goes with it)."""
        if self._keeper is not None:
            stop_keeper(self._keeper)
            self._keeper, self._session_pid = None, None

    def new_scratch(self, name: str, lowers: tuple[str, ...] | None = None) -> OverlayRoot:
        """A fresh throw-away upper (a clean build's root); in RAM when the tmpfs plugin says so."""
        self.discard_scratch(name)
        return self.store.scratch_overlay(name, lowers)

    def discard_scratch(self, name: str) -> None:
        """Delete a throw-away upper, in the run's RAM too."""
        self.store.drop_scratch(name)
        if self.scratch_in_ram:
            self.run_on_host(["rm", "-rf", "--", str(self.paths.top / "scratch" / name)], LineCollector())

    def retire_scratch(self, name: str) -> None:
        """Throw a finished build's upper away: into the root's trash (deleted during the next build, see
        deb_mock.trash), or at once when it is in the run's RAM (freeing RAM costs nothing)."""
        if self.scratch_in_ram:
            self.discard_scratch(name)
        else:
            trash.throw_away(self.paths.top, self.paths.top / "scratch" / name)

    def base_as_root(self, tree: Path) -> DirectoryRoot:
        """``tree`` itself as the root of sandbox entries (no overlay): a base being made or refreshed."""
        self.paths.mountpoint.mkdir(exist_ok=True)
        return DirectoryRoot(str(tree), str(self.paths.mountpoint))

    # -- sandbox specs -----------------------------------------------------------------------

    def network_for(self, purpose: Purpose) -> bool:
        """Whether a sandbox entry for ``purpose`` gets the host's network."""
        if self.config.offline:
            return False
        if self._enable_network:
            return True
        if purpose in (Purpose.APT, Purpose.INIT):
            return True
        if purpose in (Purpose.CHROOT, Purpose.SHELL):
            return self.config.sandbox.network
        return False

    def sandbox_spec(
        self,
        argv: Sequence[str],
        *,
        purpose: Purpose,
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
        network = self.network_for(purpose) if network is None else network
        proxy = {"http_proxy": self.config.apt_proxy} if self.config.apt_proxy and network and \
            purpose == Purpose.APT else {}  # apt takes it when no Acquire::http::Proxy is set: every apt run
        return SandboxSpec(
            argv=tuple(argv),
            root=root_fs or self.store.overlay(),
            env={**self.root_environment(unpriv), **proxy, **(env or {})},
            cwd=cwd,
            uid=uid,
            gid=uid,
            network=network,
            hostname=self.config.sandbox.hostname,
            mounts=(*plugin_mounts, *mounts),
            sys=self.config.sandbox.sys,
            tmp_size=self.config.sandbox.tmp_size,
            shm_size=self.config.sandbox.shm_size,
            max_processes=self.config.sandbox.max_processes,
            tmpfs_tmp=tmpfs_tmp == "always" or (tmpfs_tmp == "build" and purpose == Purpose.BUILD),
            marker=self.process_tag,
            join_mount_ns=self._session_pid,
            id_map=self.id_map(),
            capabilities=capability_numbers((*ROOT_CAPABILITIES, *self.config.sandbox.capabilities)),
        )

    def id_map(self) -> tuple[int, int, int] | None:
        """Root mode: the subordinate host ids uid 0.. of the root are (None in rootless mode)."""
        if self._id_map is None and os.geteuid() == 0 and not userns.is_rootless_run():
            self._id_map = userns.root_id_map()
        return self._id_map

    def root_environment(self, unpriv: bool) -> dict[str, str]:
        """The environment of commands in the root: root's or the build user's, plus the config's."""
        user = self.config.build_user if unpriv else "root"
        env = {
            "PATH": DEFAULT_PATH,
            "HOME": f"/home/{user}" if unpriv else "/root",
            "USER": user,
            "LOGNAME": user,
            "SHELL": "/bin/bash",
            "LANG": "C.UTF-8",
            "TERM": os.environ.get("TERM", "dumb"),
            "DEB_MOCK_ROOT": self.process_tag,
            "PS1": f"<deb-mock:{self.root_id}> \\w \\$ ",
        }
        env.update(self.config.sandbox.environment)
        return env

    def _host_environment(self) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", DEFAULT_PATH), "LANG": "C.UTF-8",
               "HOME": "/root", "DEB_MOCK_ROOT": self.process_tag}
        for key in ("http_proxy", "https_proxy", "no_proxy", "TMPDIR"):
            if key in os.environ:
                env[key] = os.environ[key]
        return env

    # -- running commands --------------------------------------------------------------------

    def run_in_root(
        self,
        argv: Sequence[str],
        *,
        purpose: Purpose,
        sink: OutputSink | None = None,
        interactive: bool = False,
        root_fs: RootFs | None = None,
        unpriv: bool = False,
        cwd: str = "/",
        env: dict[str, str] | None = None,
        mounts: Sequence[Mount] = (),
        network: bool | None = None,
        timeout: float | None = None,
    ) -> int:
        """Run ``argv`` in the root (or in ``root_fs``) and return its exit status.

        Output goes to ``sink``; ``interactive`` gives the command the caller's terminal instead.
        After ``timeout`` seconds a captured command is stopped (TimedOut, exit 11).
        """
        spec = self.sandbox_spec(argv, purpose=purpose, root_fs=root_fs, unpriv=unpriv, cwd=cwd, env=env,
                                 mounts=mounts, network=network)
        self.check_architecture()
        if self.orphans_possible:
            orphans.wait_for_exit(self.process_tag)
            self.orphans_possible = False
        try:
            if interactive:
                return run_interactive(spec)
            if sink is None:
                raise UsageError("run_in_root needs a sink unless interactive")
            return run_captured(spec, sink, timeout=timeout)
        except BaseException:
            self.orphans_possible = True  # stopped (time limit, signal): its namespace may still be dying
            raise

    def checked_run(self, argv: Sequence[str], stage: str, *, root_fs: RootFs | None = None,
                    network: bool | None = None, unpriv: bool = False, mounts: Sequence[Mount] = (),
                    env: dict[str, str] | None = None, keep: int = 200,
                    purpose: Purpose = Purpose.HELPER) -> list[str]:
        """Run a helper command in the root, logged to root.log as ``stage``; a failure is a RootError (exit 20).

        Returns the command's last ``keep`` output lines.
        """
        with self.logs.sink(stage, keep=keep) as sink:
            returncode = self.run_in_root(argv, purpose=purpose, sink=sink, root_fs=root_fs, network=network,
                                          unpriv=unpriv, mounts=mounts, env=env)
        if returncode != 0:
            tail = "\n".join(sink.tail[-10:])
            raise RootError(f"'{' '.join(argv)}' failed in the root with exit code {returncode}:\n{tail}")
        return sink.tail

    def run_on_host(self, argv: Sequence[str], sink: OutputSink, network: bool = False, marker: str = "") -> int:
        """Run a host tool (mmdebstrap, tar) in new namespaces without a chroot, in the run's session.

        Its mounts (mmdebstrap's /proc in the target, say) stay in its own mount
        namespace, and it dies with deb-mock like every sandboxed command.
        ``marker`` tags a run that does not hold the root's lock (so that the
        root's own runs never take it for a leftover of theirs).
        """
        spec = SandboxSpec(argv=tuple(argv), root=None, env=self._host_environment(), network=network,
                           hostname=self.config.sandbox.hostname, marker=marker or self.process_tag,
                           join_mount_ns=self._session_pid)
        return run_captured(spec, sink)

    # -- apt ---------------------------------------------------------------------------------

    def apt_run(self, argv: list[str], stage: str, root_fs: RootFs | None = None,
                mounts: Sequence[Mount] = (), env: dict[str, str] | None = None,
                echo: TextIO | None = None) -> list[str]:
        """Run apt in the root (or in ``root_fs``), between the pre/post apt hooks; exit 30 on failure.

        Returns apt's output lines; ``echo`` also shows them as they come.
        """
        options = list(self.config.apt_options)
        if isinstance(root_fs, OverlayRoot) and root_fs.upper != str(self.paths.upper):
            options.append("Dpkg::Options::=--force-unsafe-io")  # a disposable layer: no fsync per file
        argv = apt.with_options(argv, options)
        self.hook.debmock_pre_apt(root=self, argv=argv)
        with self.logs.stage(stage), self.logs.sink(stage, echo, keep=100_000) as sink:
            returncode = self.run_in_root(argv, purpose=Purpose.APT, sink=sink, root_fs=root_fs,
                                          env={**apt.APT_ENV, **(env or {})}, mounts=mounts)
        self.hook.debmock_post_apt(root=self, argv=argv, returncode=returncode)
        if returncode != 0:
            raise AptError(f"{apt.describe(argv)} failed (exit code {returncode}):\n{apt.explain_failure(sink.tail)}",
                           hint=f"apt's whole output is in {self.logs.root_log}")
        if "update" in argv and (root_fs is None or getattr(root_fs, "upper", None) == str(self.paths.upper)):
            self.store.record_upper_lists_update()
        return sink.tail

    def lists_are_stale(self, scratch: bool = False) -> bool:
        """Whether apt's lists are older than ``apt_lists_max_age`` (never when offline).

        ``scratch``: for a throw-away upper over the base, whose lists are the base's.
        """
        if self.config.offline:
            return False
        updated = self.store.lists_updated_at(including_upper=not scratch)
        return bool(time.time() - updated > self.config.apt_lists_max_age * 60)

    def refresh_lists_if_stale(self, root_fs: RootFs | None = None, *, in_base: bool = False) -> None:
        """Fetch fresh package lists if they are older than ``apt_lists_max_age``.

        By default into the root's upper (or ``root_fs``'s). ``in_base``: for
        throw-away uppers over the base (clean builds), whose lists are the
        base's: they are refreshed in the base itself, so that this and every
        later clean build find them current. Package lists are apt's view of
        the archive, not installed software, and this runs under the root's
        lock with nothing mounted on the base. (Refreshing in each build's
        upper instead cost every later build an update and a resolution.)
        """
        if not self.lists_are_stale(scratch=in_base):
            return
        if in_base:
            self.apt_run(apt.update_command(), "apt-update", root_fs=self.base_as_root(self.paths.base))
            self.store.update_base_info(lists_updated=time.time())
        else:
            self.apt_run(apt.update_command(), "apt-update", root_fs=root_fs)

    @contextlib.contextmanager
    def tool_root(self, name: str, packages: Sequence[str]) -> Iterator[RootFs]:
        """A throw-away root with ``packages`` installed over the base, for tools that read build output.

        Checkers such as lintian run inside the sandbox, from the root's own
        release, never on the host. The packages live in a layer cached like
        build dependencies (keyed by the base's content id, the packages and
        the lists' date), so only the first use installs them; each use gets a
        fresh upper over that layer, discarded at the end.
        """
        apt.check_package_names(packages)
        cache = BuildDepsCache.for_config(self.config, "tool-layers")
        self.refresh_lists_if_stale(in_base=True)
        key = cache.key(self.store.base_content_id(), ["tool layer", self.store.lists_stamp(), *sorted(packages)],
                        [])
        lease = cache.acquire(key)
        try:
            if lease is None:
                scratch = self.new_scratch(name)
                self.apt_run(apt.install_command(packages), f"{name}-install", root_fs=scratch)
                if self.scratch_in_ram:
                    yield scratch  # an upper in RAM cannot be renamed into the on-disk cache: used once
                    return
                lease = cache.store(key, self.store.scratch_upper(name))
                if lease is None:
                    if cache.refused:  # else another run saved the same layer meanwhile
                        self.console.warn(cache.refusal(f"{name} layer") + " (every check installs it again)")
                    yield scratch
                    return
            yield self.new_scratch(name, lowers=(str(lease.layer), str(self.paths.base)))
        finally:
            self.discard_scratch(name)
            if lease is not None:
                lease.release()

    @contextlib.contextmanager
    def outbox(self, destination: Path, target: str, *, links: bool = False) -> Iterator[Bind]:
        """A bind at ``target`` for a command to write results into; they then land in ``destination``.

        The command writes into a private staging directory as an unprivileged
        host id (never through an idmapped mount, so nothing it makes is the
        host's root's, setuid or not), and deb-mock copies what it holds into
        ``destination`` without privileges and without following links
        (:func:`deb_mock.fileio.deliver_tree`), when the block ends without an
        error. Symbolic links are delivered only with ``links`` (never into a
        result directory, where deb-mock writes its logs afterwards).
        """
        with self.staging(target) as (stage, bind):
            yield bind
            deliver_tree(stage, destination, links=links)

    @contextlib.contextmanager
    def staging(self, target: str) -> Iterator[tuple[Path, Bind]]:
        """A private directory in the root's directory and its bind at ``target``, where root in the root
        writes as an unprivileged host id (never through an idmapped mount); deleted at the end unless the
        caller moved it away. A killed run's staging directories go with the next run's leftovers."""
        import tempfile  # outboxes and kept source trees only

        self.paths.top.mkdir(parents=True, exist_ok=True)
        mark_top_of_hierarchy(self.paths.top)  # mkdtemp's unique name puts it in a group of its own there
        stage = Path(tempfile.mkdtemp(prefix="outbox-", dir=self.paths.top))
        try:
            id_map = self.id_map()
            if id_map is not None:
                os.chown(stage, id_map[0], id_map[1])
            yield stage, Bind(str(stage), target, readonly=False, idmap=False)
        finally:
            remove_tree(stage)

    def write_installed_packages(self, root_fs: RootFs | None = None,
                                 resultdir: Path | None = None) -> list[dict[str, str]] | None:
        """installed-pkgs.log: every package of the root (or of ``root_fs``) with its version.

        Read from dpkg's database in the layers (no sandbox entry) when that
        is certain, else asked of dpkg-query in the root. Returns the packages
        (name, version, architecture) for result.json; None if none could be read.
        """
        target = (resultdir or self.resultdir) / "installed-pkgs.log"
        overlay = root_fs if root_fs is not None else self.store.overlay()
        packages: list[dict[str, str]] | None = None
        if isinstance(overlay, OverlayRoot):
            status = dpkg_status.read_status([overlay.upper, *overlay.lowers])
            if status is not None:
                packages = dpkg_status.installed_packages(status)
                lines = dpkg_status.installed_lines(packages, self.config.architecture)
        if packages is None:
            collector = LineCollector()
            returncode = self.run_in_root(apt.installed_packages_command(), purpose=Purpose.QUERY,
                                          sink=collector, network=False, root_fs=root_fs)
            if returncode != 0:
                self.console.warn("could not list the installed packages: " + " ".join(collector.lines[-3:]))
                return None
            fields = sorted(line.split() for line in collector.lines if len(line.split()) == 3)
            lines = [f"{name} {version}" for name, version, _arch in fields]
            packages = [{"name": name.partition(":")[0], "version": version, "architecture": arch}
                        for name, version, arch in fields]
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return [{key: p[key] for key in ("name", "version", "architecture")} for p in packages]
