"""What a sandboxed run looks like, as plain data handed to the namespace init.

The parent (deb-mock) decides everything here; ``init.py`` only carries it out
in the new namespaces. Keeping the description pure data makes the command
builders testable without root and lets a rootless mode reuse the same init
with a user namespace in front.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Mapping
from typing import Literal

#: the PATH of every command run in a root (Debian's default for root)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: where a run's helper mounts (sources, results, local .debs, copies) appear inside a root
RUN_DIR = "/run/deb-mock"


@dataclasses.dataclass(frozen=True)
class Bind:
    """Bind-mount a host path into the root."""

    source: str
    target: str
    readonly: bool = True
    #: create the target if it does not exist (as a directory, or a file for file sources)
    create: bool = True
    #: root mode: show the source's owners mapped into the root (uid 0 on disk is root inside), so what
    #: root in the root writes lands as the real ids; False for outputs that untrusted code may fill,
    #: which then get unprivileged host ids (see RootServices.outbox)
    idmap: bool = True


@dataclasses.dataclass(frozen=True)
class Tmpfs:
    """Mount a fresh tmpfs inside the root."""

    target: str
    size: str | None = None
    mode: int = 0o755


Mount = Bind | Tmpfs

#: Linux's capabilities (linux/capability.h) in the order of their numbers, without the CAP_ prefix
CapabilityName = Literal[
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE",
]
CAPABILITIES: dict[str, int] = {name: number for number, name in enumerate(typing.get_args(CapabilityName))}

#: what root in a root keeps: enough for apt, dpkg and maintainer scripts (file ownership and modes,
#: adduser, su/runuser, setcap in postinsts, chroot for dpkg --root), the set container engines give
#: by default; never SYS_ADMIN, SYS_MODULE, SYS_RAWIO, SYS_PTRACE, MKNOD, NET_ADMIN or NET_RAW
ROOT_CAPABILITIES: tuple[CapabilityName, ...] = (
    "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE",
    "SYS_CHROOT", "AUDIT_WRITE", "SETFCAP",
)


def capability_numbers(names: tuple[CapabilityName, ...]) -> tuple[int, ...]:
    """The numbers of ``names`` (checked by the config schema), sorted and without repeats."""
    return tuple(sorted({CAPABILITIES[name] for name in names}))


def with_run_dir(*mounts: Mount) -> list[Mount]:
    """``mounts`` (binds below RUN_DIR) preceded by the small tmpfs that holds them.

    RUN_DIR is a fresh tmpfs in every entry that uses it, so helper mounts
    never leave mount points behind in the root's own /run.
    """
    return [Tmpfs(RUN_DIR, size="1M"), *mounts]


@dataclasses.dataclass(frozen=True)
class OverlayRoot:
    """The merged root: ``upper`` over ``lowers`` (top first), assembled at ``mountpoint``."""

    lowers: tuple[str, ...]
    upper: str
    work: str
    mountpoint: str


@dataclasses.dataclass(frozen=True)
class DirectoryRoot:
    """A plain directory used as the root (the base while it is being prepared)."""

    path: str
    mountpoint: str


RootFs = OverlayRoot | DirectoryRoot


@dataclasses.dataclass(frozen=True)
class SandboxSpec:
    """Everything the namespace init needs to run one command."""

    argv: tuple[str, ...]
    #: None runs the command on the host's file system (new namespaces, no chroot)
    root: RootFs | None = None
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    network: bool = False
    hostname: str = "deb-mock"
    mounts: tuple[Mount, ...] = ()
    sys: Literal["ro", "none"] = "ro"
    tmp_size: str = "2G"
    shm_size: str = "1G"
    #: RLIMIT_NPROC of a command run as another user than root (0: no limit)
    max_processes: int = 0
    #: mount a fresh tmpfs on /tmp (otherwise /tmp is the root's own, persistent one)
    tmpfs_tmp: bool = False
    #: bind the host's resolv.conf over the root's when the network is on
    share_resolv_conf: bool = True
    #: marker put into every process's environment, found again by --orphanskill
    marker: str = ""
    #: enter this process's mount namespace first (a run's session keeper, see runner.start_keeper)
    join_mount_ns: int | None = None
    #: tmpfs mounts at host paths, for a command run without a root (the session keeper)
    host_mounts: tuple[Tmpfs, ...] = ()
    #: standard input is a pty deb-mock relays: make it the command's controlling terminal
    terminal: bool = False
    #: root mode: (first uid, first gid, count) of the host ids that 0.. of the root's user namespace map to;
    #: None in rootless mode (the whole run already is in a user namespace)
    id_map: tuple[int, int, int] | None = None
    #: the bounding set (capability numbers) of a command run as root in a root; None keeps every
    #: capability (host tools). A command run as another user always keeps none.
    capabilities: tuple[int, ...] | None = None

    def to_json(self) -> str:
        """Serialise for the init process (which only uses the standard library)."""
        data = dataclasses.asdict(dataclasses.replace(self, env=dict(self.env)))
        data["mounts"] = [
            {"kind": type(m).__name__.lower(), **dataclasses.asdict(m)} for m in self.mounts
        ]
        if self.root is not None:
            data["root"] = {"kind": type(self.root).__name__, **dataclasses.asdict(self.root)}
        data["env"] = dict(self.env)
        data["host_mounts"] = [dataclasses.asdict(m) for m in self.host_mounts]
        return json.dumps(data)
