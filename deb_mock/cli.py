"""The deb-mock command line: mock's modes and options, parsed and handed to Root.

The CLI parses, loads the configuration, calls one Root method and reports:
human output on stderr, one JSON object on stdout with --json, and an exit
code from deb-mock(1)'s table. A user error never shows a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pluggy

from deb_mock import __version__, orphans, stage_commands, userns
from deb_mock.config import LoadedConfig, Override, describe, load_config
from deb_mock.config.loader import to_plain, with_rootless_paths
from deb_mock.config.locate import list_configs
from deb_mock.copies import check_copy_arguments
from deb_mock.errors import DebMockError, SandboxError, UsageError
from deb_mock.logs import Console
from deb_mock.plugin_manager import config_sections, describe_plugins, drop_disabled, make_plugin_manager
from deb_mock.result import RunResult
from deb_mock.root import Root, RunOptions

if TYPE_CHECKING:  # build options are made by build modes only (a warm --chroot imports less)
    from deb_mock.build_commands import BuildOptions, BuildSelection

#: modes that print something and exit, without touching (or locking) a root
INFO_MODES = ("version", "list_chroots", "list_plugins", "debug_config", "print_root_path", "orphanskill",
              "list_snapshots")
#: modes that run apt on the root's own state
PACKAGE_MODES = ("install", "remove", "update", "pm_cmd", "installdeps")
#: modes that work on a root, in the order their flags are documented
ROOT_MODES = ("rebuild", "buildsrc", "init", "chroot", "shell", "install", "remove", "update", "pm_cmd", "installdeps",
              "copyin", "copyout", "clean", "scrub", "snapshot", "rollback_to", "remove_snapshot")


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as exit 5 instead of its own exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, hint="see deb-mock --help")


def build_parser(plugins: pluggy.PluginManager | None = None) -> argparse.ArgumentParser:
    """The argument parser (plugins may add options through debmock_addoption)."""
    parser = _Parser(prog="deb-mock", description="Clean, isolated, cached Debian build roots.")
    _add_modes(parser)
    parser.add_argument("args", nargs="*", help="arguments of the mode")
    _add_options(parser)
    _add_build_options(parser)
    if plugins is not None:
        plugins.hook.debmock_addoption(parser=parser)
    return parser


def _add_modes(parser: argparse.ArgumentParser) -> None:
    modes = parser.add_argument_group("modes (one per run)")
    exclusive = modes.add_mutually_exclusive_group()
    add = exclusive.add_argument
    add("--version", action="store_true", help="print the version and exit")
    add("--list-chroots", action="store_true", help="list the known chroot configs")
    add("--list-plugins", action="store_true", help="list plugins, their hooks and whether enabled")
    add("--debug-config", action="store_true", help="print the merged config and where each value came from")
    add("-p", "--print-root-path", action="store_true", help="print the root's mount point path")
    add("--orphanskill", action="store_true", help="kill every process left in the root")
    add("--rebuild", action="store_true", help="build ARGS: .dsc files or source package names (NAME[=VERSION])")
    add("--buildsrc", action="store_true", help="build the source package of --sources DIR, then its binaries")
    add("--init", action="store_true", help="create the root (instant if it exists)")
    add("--chroot", action="store_true", help="run ARGS in the root (one argument: through /bin/sh -c), logged")
    add("--shell", action="store_true", help="interactive shell in the root, or run ARGS; not logged")
    add("-i", "--install", action="store_true", help="apt-get install ARGS (names or local .deb files)")
    add("--remove", action="store_true", help="apt-get remove ARGS")
    add("--update", action="store_true", help="apt-get update and dist-upgrade (or upgrade only ARGS)")
    add("--pm-cmd", action="store_true", help="apt-get ARGS in the root, its output shown (mock's --pm-cmd)")
    add("--installdeps", action="store_true", help="install the build dependencies of ARGS (.dsc files or names)")
    add("--copyin", action="store_true", help="copy host paths ARGS... into the root at the last ARG")
    add("--copyout", action="store_true", help="copy root paths ARGS... to the host at the last ARG")
    add("--clean", action="store_true", help="discard every change since the last snapshot (or init)")
    add("--snapshot", metavar="NAME", help="freeze the root's current state as snapshot NAME")
    add("--rollback-to", metavar="NAME", help="go back to snapshot NAME (later changes are dropped)")
    add("--remove-snapshot", metavar="NAME", help="delete snapshot NAME")
    add("-l", "--list-snapshots", action="store_true", help="list the root's snapshots")
    add("--scrub", action="append", metavar="KIND",
        help="delete: chroot, snapshots, results, caches of plugins, all (repeatable, a,b)")


def _add_options(parser: argparse.ArgumentParser) -> None:
    opts = parser.add_argument_group("options")
    opt = opts.add_argument
    opt("-r", "--root", metavar="NAME|FILE", help="chroot config name or YAML file (default: default.yaml)")
    opt("--uniqueext", metavar="EXT", help="a separate root from the same config (NAME-EXT)")
    opt("--resultdir", metavar="DIR", type=Path, help="result directory (default <basedir>/<root>/result)")
    opt("--config-opts", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    opt("--enable-plugin", action="append", default=[], metavar="NAME", help="enable a plugin")
    opt("--disable-plugin", action="append", default=[], metavar="NAME", help="disable a plugin")
    opt("--plugin-option", action="append", default=[], metavar="NAME:KEY=VALUE", help="set a plugin option")
    opt("--lock-timeout", type=float, metavar="SECONDS", help="wait at most this long for a busy root, then exit 60")
    opt("--isolation", choices=("auto", "root", "rootless"),
        help="root mode, or rootless in a user namespace with subordinate ids (default: config, auto)")
    opt("--offline", action="store_true", help="no network at all (apt uses what the root has)")
    opt("--remote-cache", metavar="URL",
        help="share root caches through an OCI registry: oci://HOST[:PORT]/PATH (config remote_cache.url)")
    opt("--remote-cache-push", action="store_true",
        help="push the root caches this run makes to the remote cache (config remote_cache.push)")
    opt("--enable-network", action="store_true", help="give --chroot/--shell and the build the host's network")
    opt("--unpriv", action="store_true", help="run --chroot/--shell as the unprivileged build user")
    opt("--cwd", metavar="DIR", help="working directory in the root for --chroot/--shell")
    opt("--failed-build", action="store_true",
        help="--chroot/--shell in the failed build kept by --keep-failed (in its build directory)")
    opt("--json", action="store_true", help="print one JSON object on stdout; human output on stderr")
    opt("-v", "--verbose", action="store_true", help="show the output of bootstrap and apt")
    opt("-q", "--quiet", action="store_true", help="no progress or notes, only warnings and errors")
    opt("--debug", action="store_true", help="show tracebacks of internal errors")


def _add_build_options(parser: argparse.ArgumentParser) -> None:
    builds = parser.add_argument_group("build options")
    bopt = builds.add_argument
    bopt("--chain", action="store_true", help="build in order, each result offered to the next")
    bopt("-c", "--continue", dest="keep_going", action="store_true", help="go on after a failed package")
    bopt("--sources", metavar="DIR", type=Path, help="the unpacked source tree for --buildsrc")
    bopt("-n", "--no-clean", action="store_true", help="build in the root's current state, not a clean one")
    bopt("--nocheck", action="store_true", help="skip tests (DEB_BUILD_OPTIONS=nocheck, profile nocheck)")
    bopt("-j", "--jobs", type=int, metavar="N", help="parallel jobs (DEB_BUILD_OPTIONS=parallel=N)")
    bopt("--profiles", metavar="P,Q", default="", help="build profiles")
    arch = builds.add_mutually_exclusive_group()
    arch.add_argument("--arch-any", action="store_true", help="build only architecture-dependent packages")
    arch.add_argument("--arch-all", action="store_true", help="build only architecture-independent packages")
    bopt("--source", action="store_true", help="also build the source package (into the .changes)")
    bopt("--source-only-changes", action="store_true", help="also write a source-only .changes")
    bopt("--extra-package", action="append", default=[], type=Path, metavar="FILE.deb|DIR",
         help="local .debs offered to the dependency resolver (repeatable)")
    bopt("--additional-package", action="append", default=[], metavar="PKG",
         help="install PKG besides the build dependencies (repeatable)")
    bopt("--postinstall", action="store_true", help="install the built packages into the root afterwards")
    _add_archive_options(builds)
    bopt("--build-timeout", type=float, metavar="SECONDS",
         help="stop dpkg-buildpackage after SECONDS (exit 11; default: the config's build_timeout)")
    bopt("--keep-failed", action="store_true", default=None,
         help="keep a failed build's root for --shell --failed-build (until --clean or the next build)")
    bopt("--hookdir", type=Path, metavar="DIR", help="run a pbuilder hook directory's scripts at their stages")
    bopt("--run-autopkgtest", action="store_true", default=None,
         help="after a successful build, run its autopkgtests in a throw-away layer (reported in result.json)")
    bopt("--autopkgtest-opts", metavar="OPTS", help="more options for autopkgtest (one string, split as a shell does)")
    bopt("--autopkgtest-fail", action="store_true", default=None, help="a failing autopkgtest fails the run (exit 12)")
    bopt("--run-piuparts", action="store_true", default=None,
         help="after a successful build, install, remove and purge the results in a throw-away layer")
    bopt("--piuparts-fail", action="store_true", default=None, help="a failing piuparts check fails the run (exit 12)")
    stages = parser.add_argument_group("stage commands (sbuild's; repeatable, run through /bin/sh)")
    for stage in stage_commands.STAGES:
        who = "as root in the root" if stage.where == "root" else "on the host, as you"
        stages.add_argument(f"--{stage.name}", action=_StageCommand, dest="stage_commands", default=[],
                            metavar="CMD", help=f"{stage.when} ({who})")



def _add_archive_options(builds: argparse._ArgumentGroup) -> None:
    """Builds as the archive builds them: signing, resolver, cross, extra repositories, binNMUs (sbuild's names)."""
    bopt = builds.add_argument
    sign = builds.add_mutually_exclusive_group()
    sign.add_argument("-k", "--keyid", metavar="KEYID",
                      help="sign the .changes (with its .buildinfo and .dsc) on the host with debsign (exit 13 if not)")
    sign.add_argument("--no-sign", dest="keyid", action="store_const", const="", help="do not sign (the default)")
    resolve = builds.add_mutually_exclusive_group()
    resolve.add_argument("--resolve-alternatives", action="store_true", default=None,
                         help="let apt choose among a build dependency's alternatives (default: the first, as buildds)")
    resolve.add_argument("--no-resolve-alternatives", dest="resolve_alternatives", action="store_false", default=None,
                         help="only the first alternative of each build dependency")
    bopt("--build-dep-resolver", choices=("apt", "aptitude"), default=None,
         help="who installs the build dependencies: apt (default) or aptitude's resolver (config build_dep_resolver)")
    upgrade = builds.add_mutually_exclusive_group()
    upgrade.add_argument("--apt-distupgrade", action="store_true", default=None,
                         help="dist-upgrade the base before a clean build when its lists hold newer packages "
                              "(the default, config apt_distupgrade)")
    upgrade.add_argument("--no-apt-distupgrade", "--no-apt-upgrade", dest="apt_distupgrade", action="store_false",
                         default=None, help="build on the base as it is, without upgrading it")
    bopt("--host", dest="host_arch", metavar="ARCH",
         help="cross-build for ARCH on the root's architecture (crossbuild-essential, profiles cross,nocheck)")
    bopt("--extra-repository", action="append", default=[], metavar="LINE",
         help="an apt source for this build only (one-line or deb822; repeatable)")
    bopt("--extra-repository-key", action="append", default=[], type=Path, metavar="FILE",
         help="a key apt trusts for the extra repositories (repeatable)")
    bopt("--make-binNMU", dest="binnmu_message", metavar="MSG", help="make a binNMU with this changelog entry")
    bopt("--binNMU", dest="binnmu", type=int, metavar="N", help="the binNMU's number (version +bN)")
    bopt("--binNMU-timestamp", dest="binnmu_timestamp", metavar="TIME",
         help="the binNMU entry's date: seconds since the epoch or an RFC 5322 date (default: now)")
    bopt("--append-to-version", metavar="SUFFIX", help="append SUFFIX to the binaries' version")
    bopt("-m", "--maintainer", metavar="NAME", help="Maintainer of the .changes; author of a binNMU's entry")
    bopt("-e", "--uploader", metavar="NAME", help="Changed-By of the .changes")
    bopt("--debbuildopts", metavar="OPTS", help="more dpkg-buildpackage options, one string split as a shell does")
    bopt("--debbuildopt", action="append", default=[], metavar="OPT", help="one more dpkg-buildpackage option")
    bopt("--dpkg-source-opts", metavar="OPTS", help="dpkg-source options when a source package is built")

class _StageCommand(argparse.Action):
    """Collect --*-commands as (stage, command) pairs in the order given."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        pairs = [*getattr(namespace, self.dest, []), (str(option_string).lstrip("-"), str(values))]
        setattr(namespace, self.dest, pairs)


def parse_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Options may follow the mode's arguments; everything after ``--`` is an argument.

    (parse_intermixed_args mishandles ``--`` on Python 3.11, so it is split off here.)
    """
    tail: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, tail = argv[:cut], argv[cut + 1:]
    args = parser.parse_intermixed_args(argv)
    args.args = [*args.args, *tail]
    return args


def plugin_modes(plugins: pluggy.PluginManager) -> dict[str, bool]:
    """Modes added by plugins: ``{dest: needs_root}``."""
    return {mode: needs for modes in plugins.hook.debmock_modes() for mode, needs in modes.items()}


def selected_mode(args: argparse.Namespace, extra_modes: Sequence[str] = ()) -> str:
    """The one mode the command line asks for (two modes at once is a usage error)."""
    chosen = [mode for mode in (*INFO_MODES, *ROOT_MODES, *extra_modes)
              if getattr(args, mode, None) not in (None, False, [])]
    if len(chosen) > 1:
        flags = " and ".join("--" + mode.replace("_", "-") for mode in chosen)
        raise UsageError(f"{flags}: give one mode per run")
    if chosen:
        return chosen[0]
    if args.args and all(item.endswith(".dsc") for item in args.args):
        return "rebuild"  # as mock: a bare source package means --rebuild
    if args.args:
        raise UsageError(f"'{args.args[0]}': no mode given", hint="use --init, --chroot, --install ... (see --help)")
    raise UsageError("nothing to do: give a mode such as --init, --chroot or --shell")


def overrides_from(args: argparse.Namespace) -> list[Override]:
    """Command-line settings as config overrides, each labelled with its flag."""
    from deb_mock.config.yamlsource import parse_option_value

    result: list[Override] = []
    for item in args.config_opts:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--config-opts '{item}': expected KEY=VALUE")
        result.append(Override(key.strip(), parse_option_value(value), f"--config-opts {item}"))
    for item in args.plugin_option:
        name, sep, rest = item.partition(":")
        key, sep2, value = rest.partition("=")
        if not (sep and sep2 and name and key):
            raise UsageError(f"--plugin-option '{item}': expected NAME:KEY=VALUE")
        result.append(Override(f"plugins.{name}.{key}", parse_option_value(value), f"--plugin-option {item}"))
    for name in args.enable_plugin:
        result.append(Override(f"plugins.{name}.enabled", True, f"--enable-plugin {name}"))
    for name in args.disable_plugin:
        result.append(Override(f"plugins.{name}.enabled", False, f"--disable-plugin {name}"))
    if args.offline:
        result.append(Override("offline", True, "--offline"))
    if args.remote_cache:
        result.append(Override("remote_cache.url", args.remote_cache, "--remote-cache"))
    if args.remote_cache_push:
        result.append(Override("remote_cache.push", True, "--remote-cache-push"))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the deb-mock command; returns the exit code."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    # what deb-mock creates (scratch layers, mount points, results) must not depend on the caller's umask:
    # a daemon's 077 (Buildbot's worker, twistd) made directories the root's own users cannot enter
    os.umask(0o022)
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    json_mode = "--json" in (argv if argv is not None else sys.argv[1:])
    console = Console(json_mode=json_mode, quiet=False, verbose=False)
    result = RunResult(mode="")
    try:
        return _main(argv, result)
    except DebMockError as exc:
        console.error(str(exc))
        result.record_failure(exc)
    except KeyboardInterrupt as exc:
        console.error("interrupted")
        result.record_failure(exc)
    except Exception as exc:  # an internal error: the message, the traceback only with --debug
        console.error(f"internal error: {type(exc).__name__}: {exc}")
        if debug:
            import traceback  # only for an internal error: not on every start

            traceback.print_exc()
        else:
            console.error("run again with --debug to see where it happened")
        result.record_failure(exc)
    if json_mode:
        print(result.to_json())
    return result.exit_code


def run() -> NoReturn:
    """The deb-mock command (the console script and ``python -m deb_mock``): main(), then an immediate exit.

    Python's own teardown (every module and object freed one by one) cost a
    warm run 10 ms and does nothing a finished run needs: the one thread
    deb-mock starts (emptying a root's trash) is joined before main() returns,
    and its files are closed by the ``with`` blocks that opened them.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):  # a reader that went away (deb-mock ... | head)
            stream.flush()
    os._exit(code)


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _main(argv: Sequence[str] | None, result: RunResult) -> int:
    plugins = make_plugin_manager()
    args = parse_args(build_parser(plugins), list(sys.argv[1:] if argv is None else argv))
    console = Console(json_mode=args.json, quiet=args.quiet, verbose=args.verbose)
    extra_modes = plugin_modes(plugins)
    mode = selected_mode(args, tuple(extra_modes))
    result.mode = mode
    if mode == "version":
        return _emit(args, {"version": __version__}, f"deb-mock {__version__}")
    if mode == "list_chroots":
        entries = list_configs()
        text = "\n".join(f"{e.name:<24} {e.description}" for e in entries)
        return _emit(args, {"chroots": [{"name": e.name, "description": e.description,
                                          "path": str(e.path)} for e in entries]}, text)
    loaded = load_config(args.root, overrides_from(args), config_sections(plugins))
    loaded = _isolate(args, mode, loaded, extra_modes)
    result.config_digest = loaded.digest
    options = RunOptions(uniqueext=args.uniqueext, resultdir=args.resultdir, lock_timeout=args.lock_timeout,
                         unpriv=args.unpriv, cwd=args.cwd, enable_network=args.enable_network,
                         failed_build=args.failed_build,
                         hookdir=stage_commands.check_hookdir(args.hookdir) if args.hookdir else None)
    if mode == "list_plugins":
        return _list_plugins(args, plugins, loaded)
    drop_disabled(plugins, loaded.config.plugins)
    if mode in extra_modes and mode not in plugin_modes(plugins):
        raise UsageError(f"--{mode.replace('_', '-')}: its plugin is disabled in the config",
                         hint="enable it with --enable-plugin NAME")
    all_plugins = make_plugin_manager() if mode == "scrub" else None  # scrub reaches disabled plugins' caches
    root = Root(loaded, plugins, console, options, all_plugins=all_plugins)
    result.root = root.root_id
    if mode == "debug_config":
        return _emit(args, {"config": to_plain(loaded.config), "origins": _origins(loaded)}, describe(loaded))
    if mode == "print_root_path":
        return _emit(args, {"root_path": str(root.paths.mountpoint)}, str(root.paths.mountpoint))
    if mode == "list_snapshots":
        snapshots = root.list_snapshots()
        if not snapshots:
            console.info(f"{root.root_id} has no snapshots")
        return _emit(args, {"snapshots": snapshots}, "\n".join(str(s["name"]) for s in snapshots) or None)
    if mode == "orphanskill":
        killed = orphans.kill(root.process_tag)
        console.info(f"killed {len(killed)} process(es) of {root.root_id}" if killed else "no processes left")
        return _emit(args, {"killed": killed}, None)
    if mode in extra_modes and not extra_modes[mode]:
        returncode = plugins.hook.debmock_run_mode(root=root.services, mode=mode, args=args)
        result.exit_code = int(returncode or 0)
        return result.exit_code
    return _run_root_mode(args, mode, root, result, mode in extra_modes)


#: modes that read files or start processes of the caller only: no user namespace needed
_OUTSIDE_MODES = ("list_plugins", "debug_config", "print_root_path", "orphanskill", "list_snapshots")


def _isolate(args: argparse.Namespace, mode: str, loaded: LoadedConfig, extra_modes: dict[str, bool]) -> LoadedConfig:
    """Pick root or rootless mode; rootless moves this process into its user namespace (see userns)."""
    isolation = args.isolation or loaded.config.isolation
    is_root = os.geteuid() == 0 and not userns.is_rootless_run()
    if isolation == "root" and not is_root:
        raise SandboxError("root mode needs root", hint="run deb-mock as root, or use --isolation=rootless")
    if isolation == "root" or (isolation == "auto" and is_root):
        return loaded
    loaded = with_rootless_paths(loaded, userns.data_home(), userns.cache_home())
    outside = mode in _OUTSIDE_MODES or (mode in extra_modes and not extra_modes[mode])
    if not outside and not userns.is_rootless_run():
        userns.enter()
    return loaded


def _run_root_mode(args: argparse.Namespace, mode: str, root: Root, result: RunResult,
                   plugin_mode: bool = False) -> int:
    if plugin_mode:
        def action() -> int:
            return int(root.hook.debmock_run_mode(root=root.services, mode=mode, args=args) or 0)
    else:
        action = _root_action(args, mode, root)
    started = time.monotonic()
    try:
        with root.session(mode) as session_result:
            returncode = action()
            session_result.exit_code = returncode
            if returncode != 0:
                session_result.error = f"the command exited with status {returncode}"
    finally:
        result.__dict__.update(root.result.__dict__)
    if args.json:
        print(result.to_json())
    elif mode == "init" and not args.quiet:
        root.console.info(f"root {root.root_id} is ready ({time.monotonic() - started:.1f}s)")
    return result.exit_code


def _root_action(args: argparse.Namespace, mode: str, root: Root) -> Callable[[], int]:
    """The Root call for ``mode``, with its arguments checked before the lock is taken."""
    items: list[str] = list(args.args)
    if args.failed_build and mode not in ("chroot", "shell"):
        raise UsageError("--failed-build goes with --chroot or --shell")

    if mode == "rebuild":
        if not items:
            raise UsageError("--rebuild needs .dsc files or source package names")
        options = build_options_from(args)
        return _done(lambda: root.rebuild(items, options, chain=args.chain, keep_going=args.keep_going))
    if mode == "buildsrc":
        if args.sources is None:
            raise UsageError("--buildsrc needs --sources DIR (an unpacked source tree)")
        _no_args(mode, items)
        options = build_options_from(args)
        return _done(lambda: root.buildsrc(args.sources, options))
    if mode == "init":
        _no_args(mode, items)
        return _done(root.init)
    if mode == "chroot":
        if not items:
            raise UsageError("--chroot needs a command")
        argv = ["/bin/sh", "-c", items[0]] if len(items) == 1 else items
        echo = sys.stderr if args.json else sys.stdout
        return lambda: root.chroot(argv, echo=echo)
    if mode == "shell":
        shell_argv = (["/bin/sh", "-c", items[0]] if len(items) == 1 else items) or None
        return lambda: root.shell(shell_argv)
    if mode in PACKAGE_MODES:
        return _package_action(args, mode, root, items)
    if mode in ("copyin", "copyout"):
        check_copy_arguments(mode, items)
        return _done(lambda: getattr(root, mode)(items[:-1], items[-1]))
    if mode == "clean":
        _no_args(mode, items)
        return _done(root.clean)
    if mode in ("snapshot", "rollback_to", "remove_snapshot"):
        _no_args(mode, items)
        name = getattr(args, mode)
        return _done(lambda: getattr(root, mode)(name))
    if mode == "scrub":
        kinds = [k.strip() for value in args.scrub for k in value.split(",") if k.strip()]
        root.check_scrub_kinds(kinds)
        return _done(lambda: root.scrub(kinds))
    raise UsageError(f"unknown mode {mode}")


def _done(call: Callable[[], object]) -> Callable[[], int]:
    """``call`` as an action: it succeeds (0) unless it raises."""
    def run() -> int:
        call()
        return 0
    return run


def _package_action(args: argparse.Namespace, mode: str, root: Root, items: list[str]) -> Callable[[], int]:
    """The modes that run apt on the root's own state."""
    if mode in ("install", "remove"):
        if not items:
            raise UsageError(f"--{mode} needs package names")
        return _done(lambda: getattr(root, mode)(items))
    if mode == "update":
        return _done(lambda: root.update(items))
    if mode == "pm_cmd":
        if not items:
            raise UsageError("--pm-cmd needs apt-get's arguments",
                             hint="for example: deb-mock --pm-cmd -- -s install hello")
        return _done(lambda: root.pm_cmd(items, echo=sys.stderr if args.json else sys.stdout))
    if not items:
        raise UsageError("--installdeps needs .dsc files or source package names")
    return _done(lambda: root.installdeps(items))


def build_options_from(args: argparse.Namespace) -> BuildOptions:
    """The build flags as :class:`BuildOptions`."""
    from deb_mock.build_commands import BuildOptions
    from deb_mock.build_sources import BuildSources

    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: must be at least 1")
    if args.build_timeout is not None and args.build_timeout <= 0:
        raise UsageError(f"--build-timeout {args.build_timeout:g}: must be more than 0 seconds")
    for _stage, command in args.stage_commands:
        stage_commands.check_command(command)
    BuildSources.parse(args.extra_repository, args.extra_repository_key, "--extra-repository")
    profiles = tuple(p.strip() for p in args.profiles.split(",") if p.strip())
    arch: BuildSelection = "any" if args.arch_any else "all" if args.arch_all else "any,all"
    return BuildOptions(source=args.source, source_only_changes=args.source_only_changes,
                        nocheck=args.nocheck, jobs=args.jobs, profiles=profiles,
                        extra_packages=tuple(args.extra_package), additional_packages=tuple(args.additional_package),
                        no_clean=args.no_clean, enable_network=args.enable_network, postinstall=args.postinstall,
                        timeout=args.build_timeout, stage_commands=tuple(args.stage_commands),
                        keep_failed=args.keep_failed, run_autopkgtest=args.run_autopkgtest,
                        autopkgtest_opts=_split_options("--autopkgtest-opts", args.autopkgtest_opts),
                        autopkgtest_fail=args.autopkgtest_fail, run_piuparts=args.run_piuparts,
                        piuparts_fail=args.piuparts_fail, maintainer=args.maintainer, uploader=args.uploader,
                        debbuildopts=(*(_split_options("--debbuildopts", args.debbuildopts) or ()),
                                      *args.debbuildopt),
                        dpkg_source_opts=_split_options("--dpkg-source-opts", args.dpkg_source_opts) or (),
                        extra_repositories=tuple(args.extra_repository),
                        resolve_alternatives=args.resolve_alternatives, keyid=args.keyid,
                        apt_distupgrade=args.apt_distupgrade, build_dep_resolver=args.build_dep_resolver,
                        host_arch=_host_arch(args.host_arch),
                        extra_repository_keys=tuple(args.extra_repository_key),
                        **_version_options(args, arch))


def _version_options(args: argparse.Namespace, arch: BuildSelection) -> dict[str, Any]:
    """--make-binNMU/--binNMU/--append-to-version, checked as sbuild checks them (a binNMU is arch-any only)."""
    if (args.binnmu is None) != (args.binnmu_message is None):
        raise UsageError("--make-binNMU and --binNMU go together (the changelog message and the number)")
    if args.binnmu is not None and args.binnmu < 1:
        raise UsageError(f"--binNMU {args.binnmu}: must be 1 or more")
    changes_version = args.binnmu is not None or bool(args.append_to_version)
    if changes_version and not (args.maintainer or args.uploader):
        raise UsageError("a binNMU or --append-to-version writes a changelog entry: give its author with "
                         "-m/--maintainer or -e/--uploader")
    if args.binnmu is not None and (args.arch_all or args.source):
        raise UsageError("a binNMU builds the architecture-dependent packages only: drop --arch-all/--source")
    if args.binnmu_timestamp is not None and args.binnmu is None and not args.append_to_version:
        raise UsageError("--binNMU-timestamp goes with --binNMU or --append-to-version")
    return {"binnmu": args.binnmu, "binnmu_message": args.binnmu_message, "binnmu_timestamp": args.binnmu_timestamp,
            "append_to_version": args.append_to_version or None,
            "arch": "any" if args.binnmu is not None else arch}


def _host_arch(value: str | None) -> str | None:
    """--host ARCH: a Debian architecture name (apt says later whether the archive has it)."""
    if value is not None and not re.fullmatch(r"[a-z0-9][a-z0-9-]*", value):
        raise UsageError(f"--host {value!r}: not a Debian architecture name (amd64, arm64, riscv64 ...)")
    return value


def _split_options(option: str, value: str | None) -> tuple[str, ...] | None:
    """A string of options split as a shell does (sbuild's --autopkgtest-opts); exit 5 if unbalanced."""
    if value is None:
        return None
    try:
        return tuple(shlex.split(value))
    except ValueError as exc:
        raise UsageError(f"{option} {value!r}: {exc}") from None


def _no_args(mode: str, items: list[str]) -> None:
    if items:
        raise UsageError(f"--{mode} takes no arguments (got {' '.join(items)})")


def _list_plugins(args: argparse.Namespace, plugins: pluggy.PluginManager, loaded: LoadedConfig) -> int:
    enabled = {name for name, settings in loaded.config.plugins.items() if getattr(settings, "enabled", True)}
    active = make_plugin_manager()
    for name in list(dict(active.list_name_plugin())):
        if name not in enabled and active.get_plugin(name) is not None:
            active.unregister(name=name)
    infos = describe_plugins(plugins, active)
    text = "\n".join(
        f"{i.name:<12} {i.version:<8} {'enabled ' if i.enabled else 'disabled'} {i.source:<10} {', '.join(i.hooks)}"
        for i in infos
    )
    return _emit(args, {"plugins": [vars(i) | {"hooks": list(i.hooks)} for i in infos]}, text)


def _origins(loaded: LoadedConfig) -> dict[str, str]:
    return {".".join(path): origin for path, origin in sorted(loaded.merged.origins.items())}


def _emit(args: argparse.Namespace, data: dict[str, Any], text: str | None) -> int:
    if args.json:
        print(json.dumps({"status": "success", "exit_code": 0, **data}, indent=2, default=str))
    elif text is not None:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
