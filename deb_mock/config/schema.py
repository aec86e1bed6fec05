"""The configuration schema: frozen, typed dataclasses read once per run.

Every key a user may write in a YAML config is a field here, with its default.
deb-mock.yaml(5) documents the same keys; a unit test keeps the two in step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from deb_mock.sandbox.spec import CapabilityName

DEFAULT_BASEDIR = "/var/lib/deb-mock"
DEFAULT_CACHE_TOPDIR = "/var/cache/deb-mock"


@dataclasses.dataclass(frozen=True)
class SandboxConfig:
    """How commands are isolated inside a root."""

    #: hostname seen inside the root (never the host's)
    hostname: str = "deb-mock"
    #: size of the tmpfs mounted on /tmp (tmpfs size= syntax)
    tmp_size: str = "2G"
    #: size of the tmpfs on /dev/shm (tmpfs size= syntax): filling it fails the command, not the host
    shm_size: str = "1G"
    #: most processes the build user may have at once (a fork bomb fails the build, the host stays usable)
    max_processes: int = 4096
    #: when /tmp is a fresh tmpfs: "build" (package builds only), "always" or "never";
    #: otherwise /tmp is the root's own and persists like the rest of the root
    tmpfs_tmp: Literal["build", "always", "never"] = "build"
    #: "ro" mounts a read-only sysfs on /sys, "none" leaves /sys empty
    sys: Literal["ro", "none"] = "ro"
    #: --chroot/--shell share the host's network (true) or see only loopback (false);
    #: apt always has the network unless ``offline``, package builds never unless asked
    network: bool = True
    #: capabilities (names without CAP_, e.g. SYS_ADMIN) that commands run as root in the root keep
    #: beyond the few apt and dpkg need; each widens what a maintainer script or --chroot may do
    capabilities: tuple[CapabilityName, ...] = ()
    #: extra environment variables for every command in the root
    environment: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class RemoteCacheConfig:
    """A registry that builders share caches through (see deb-mock(1), REMOTE CACHE)."""

    #: oci://HOST[:PORT]/PATH of a repository in an OCI registry; empty: no remote cache
    url: str | None = None
    #: push what this builder makes (only trusted builders should)
    push: bool = False
    #: which caches go through the registry: "root" (the root caches), "build-deps" (build-dependency layers)
    kinds: tuple[Literal["root", "build-deps"], ...] = ("root", "build-deps")
    #: a file with "user:password" for the registry's basic authentication
    credentials: str | None = None
    #: sign what this builder pushes with this OpenPGP key (the invoking user's gpg)
    sign_key: str | None = None
    #: with keyrings, a pulled entry counts only with a good signature by one of their keys
    keyrings: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class HooksConfig:
    """Commands at sbuild's stages of a build, and a pbuilder hook directory (see deb-mock(1) STAGE COMMANDS).

    Each list runs before the same stage's commands from the command line.
    """

    #: on the host, as deb-mock's user, before anything else
    pre_build_commands: tuple[str, ...] = ()
    #: in the build root as root, before the build dependencies are installed
    chroot_setup_commands: tuple[str, ...] = ()
    #: in the build root as root, after refreshing the package lists failed
    chroot_update_failed_commands: tuple[str, ...] = ()
    #: in the build root as root, after installing the build dependencies failed
    build_deps_failed_commands: tuple[str, ...] = ()
    #: in the build root as root, after the unpack, just before dpkg-buildpackage
    starting_build_commands: tuple[str, ...] = ()
    #: in the build root as root, after dpkg-buildpackage failed
    build_failed_commands: tuple[str, ...] = ()
    #: in the build root as root, after dpkg-buildpackage (failed or not)
    finished_build_commands: tuple[str, ...] = ()
    #: in the build root as root, last, after the results were copied out
    chroot_cleanup_commands: tuple[str, ...] = ()
    #: on the host, as deb-mock's user, after a successful build
    post_build_commands: tuple[str, ...] = ()
    #: on the host, as deb-mock's user, after a failed build
    post_build_failed_commands: tuple[str, ...] = ()
    #: a pbuilder hook directory (scripts A*, B*, C*, D*, H*, I* in builds; E* after --update; F* before a shell)
    hookdir: str | None = None

    def commands(self, stage: str) -> tuple[str, ...]:
        """The commands of ``stage`` (sbuild's name, with dashes)."""
        value: tuple[str, ...] = getattr(self, stage.replace("-", "_"))
        return value


@dataclasses.dataclass(frozen=True)
class Config:
    """A root's whole configuration after all layers were merged."""

    #: name of the root (defaults to the config file's name)
    name: str = ""
    #: one line shown by --list-chroots
    description: str = ""
    #: Debian suite (codename or symbolic name) to bootstrap
    suite: str = "trixie"
    #: Debian architecture of the root
    architecture: str = "amd64"
    #: mmdebstrap variant: buildd for build roots, minbase, apt, important, standard ...
    variant: str = "buildd"
    #: archive components
    components: tuple[str, ...] = ("main",)
    #: archive URI; empty means mmdebstrap's default mirror
    mirror: str | None = None
    #: HTTP proxy for apt (bootstrap and every apt run)
    apt_proxy: str | None = None
    #: extra apt settings as apt's -o takes them ("Acquire::Check-Valid-Until=false"), for every apt run
    apt_options: tuple[str, ...] = ()
    #: extra packages installed by the bootstrap
    packages: tuple[str, ...] = ()
    #: add deb-src lines for every deb line, so that sources can be fetched
    deb_src: bool = False
    #: extra one-line apt sources ("deb URI SUITE COMPONENTS")
    extra_sources: tuple[str, ...] = ()
    #: extra keyring files given to mmdebstrap
    keyrings: tuple[str, ...] = ()
    #: more suites to fetch source packages from (--rebuild NAME/SUITE), from the root's first archive
    source_suites: tuple[str, ...] = ()
    #: sign each build's .changes (and its .buildinfo and .dsc) with this OpenPGP key, on the host (sbuild's key_id)
    key_id: str | None = None
    #: let apt choose among the alternatives of a build dependency (true), or take the first one as Debian's
    #: buildds do for unstable (false, the default)
    resolve_alternatives: bool = False
    #: who installs a build's dependencies: apt (apt-get satisfy) or aptitude (its resolver searches every
    #: alternative and version; installed in the build's throw-away layer), as sbuild's build_dep_resolver
    build_dep_resolver: Literal["apt", "aptitude"] = "apt"
    #: before a clean build, dist-upgrade the base once per fresh set of package lists when they hold newer
    #: packages (sbuild's apt_distupgrade; --no-apt-distupgrade turns it off for one build)
    apt_distupgrade: bool = True
    #: apt sources for builds only (one-line or deb822), in the build's throw-away layer, never the base
    build_sources: tuple[str, ...] = ()
    #: key files apt trusts for build_sources (armoured .asc or binary .gpg)
    build_source_keys: tuple[str, ...] = ()
    #: keyrings that must have signed every .dsc built (checked with gpgv); empty: no check
    source_keyrings: tuple[str, ...] = ()
    #: templates merged before this file (names or paths); consumed while loading
    templates: tuple[str, ...] = ()
    #: where roots live
    basedir: str = DEFAULT_BASEDIR
    #: where caches live
    cache_topdir: str = DEFAULT_CACHE_TOPDIR
    #: result directory; empty means <basedir>/<root>/result
    resultdir: str | None = None
    #: never use the network (apt works from what the root already has)
    offline: bool = False
    #: bootstrap with mmdebstrap's eatmydata hook (no fsync while an unfinished base is written)
    bootstrap_unsafe_io: bool = True
    #: name and uid of the unprivileged user created in every root
    build_user: str = "build"
    build_uid: int = 1000
    #: minutes after which apt's lists are refreshed before an install
    apt_lists_max_age: int = 60
    #: a build-deps layer not used for this many days is deleted when another is saved; 0: kept for ever
    build_deps_max_age_days: float = 15
    #: how many unpacked source trees a config keeps for rebuilds (deb_mock.source_trees); 0: none
    source_trees_kept: int = 8
    #: seconds to wait for a busy root's lock; empty means wait for ever
    lock_timeout: float | None = None
    #: seconds dpkg-buildpackage may run before the build is stopped (exit 11); empty: no limit
    build_timeout: float | None = None
    #: "root" (run as root), "rootless" (an ordinary user, inside a user namespace with
    #: subordinate ids) or "auto" (root mode when run as root, rootless otherwise)
    isolation: Literal["auto", "root", "rootless"] = "auto"
    #: keep a failed build's root for `--shell --failed-build` (until --clean or the next build)
    keep_failed: bool = False
    #: after a successful build, run the package's autopkgtests in a throw-away layer (sbuild's run_autopkgtest)
    run_autopkgtest: bool = False
    #: extra options for autopkgtest (before its "-- null")
    autopkgtest_opts: tuple[str, ...] = ()
    #: a failing autopkgtest fails the run (exit 12) instead of being only reported
    autopkgtest_fail: bool = False
    #: after a successful build, install, remove and purge the results in a throw-away layer (as piuparts)
    run_piuparts: bool = False
    #: a failing install/remove/purge check fails the run (exit 12) instead of being only reported
    piuparts_fail: bool = False
    #: commands and hook scripts at the stages of a build
    hooks: HooksConfig = dataclasses.field(default_factory=HooksConfig)
    #: sandbox settings
    sandbox: SandboxConfig = dataclasses.field(default_factory=SandboxConfig)
    #: a remote cache tier in an OCI registry
    remote_cache: RemoteCacheConfig = dataclasses.field(default_factory=RemoteCacheConfig)
    #: per-plugin settings, checked against each plugin's own dataclass
    plugins: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def plugin(self, name: str) -> Any:
        """The typed settings of plugin ``name`` (its dataclass instance)."""
        return self.plugins[name]
