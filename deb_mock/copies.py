"""--copyin and --copyout: files cross between the host and a root only through the sandbox.

The host side is bind-mounted into the root's run directory and ``cp`` runs
inside; paths reach the fixed scripts below as arguments, never as shell
text.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from deb_mock.errors import RootError, UsageError
from deb_mock.sandbox.spec import RUN_DIR, Bind, Mount, with_run_dir
from deb_mock.services import Purpose, RootServices

#: copy into a directory that is created when missing ($1 = directory, then the sources)
COPY_INTO_DIR = 'set -e; d=$1; shift; mkdir -p -- "$d"; exec cp -a --no-preserve=ownership -- "$@" "$d"'
#: copy one source to a path: into it if it is a directory, else as that name
COPY_TO_PATH = (
    'set -e; d=$1; shift; if [ -d "$d" ]; then exec cp -a --no-preserve=ownership -- "$1" "$d"; fi; '
    'mkdir -p -- "$(dirname -- "$d")"; exec cp -a --no-preserve=ownership -T -- "$1" "$d"'
)


def check_copy_arguments(mode: str, items: Sequence[str]) -> None:
    """Sources and a destination, the root's side given as absolute paths (exit 5 otherwise)."""
    if len(items) < 2:
        raise UsageError(f"--{mode} needs at least one source and a destination")
    if mode == "copyin":
        for source in items[:-1]:
            if not Path(source).exists():
                raise UsageError(f"--copyin: {source}: no such file or directory")
        if not items[-1].startswith("/"):
            raise UsageError(f"--copyin: destination '{items[-1]}' must be an absolute path in the root")
        return
    for source in items[:-1]:
        if not source.startswith("/"):
            raise UsageError(f"--copyout: '{source}' must be an absolute path in the root")


def copy_in(services: RootServices, sources: Sequence[str], dest: str) -> None:
    """Copy host files or directories into the root (cp -a, owned by root); arguments checked by the caller."""
    binds: list[Mount] = []
    inside: list[str] = []
    for index, source in enumerate(sources):
        path = Path(source).resolve()
        target = f"{RUN_DIR}/in/{index}/{path.name}"
        binds.append(Bind(str(path), target, readonly=True))
        inside.append(target)
    into_dir = len(sources) > 1 or dest.endswith("/")
    script = COPY_INTO_DIR if into_dir else COPY_TO_PATH
    _copy(services, ["/bin/sh", "-c", script, "sh", dest, *inside], with_run_dir(*binds), "copyin")


#: copy root paths out ($1 = directory, $2 = a new name or "", then the sources); device nodes, FIFOs
#: and sockets are refused by name (they could not be made outside anyway)
COPY_OUT = r"""set -e
out=$1; name=$2; shift 2
if [ -n "$(find -H "$@" \( -type b -o -type c -o -type p -o -type s \) -print -quit)" ]; then
  echo "refusing to copy device nodes, FIFOs or sockets out of the root:" >&2
  find -H "$@" \( -type b -o -type c -o -type p -o -type s \) -print >&2; exit 1
fi
if [ -n "$name" ]; then exec cp -R -H --preserve=mode,timestamps,links -T -- "$1" "$out/$name"; fi
exec cp -R -H --preserve=mode,timestamps,links -- "$@" "$out/"
"""


def copy_out(services: RootServices, sources: Sequence[str], dest: str) -> None:
    """Copy files or directories from the root to the host, without privileges.

    The copy runs in the root and writes into an outbox as an unprivileged id;
    deb-mock then copies that into ``dest`` with no setuid/setgid bit, no
    device node and without following links (:meth:`RootServices.outbox`).
    A symlink named as a source is copied as what it points to in the root.
    Arguments are checked by the caller (:func:`check_copy_arguments`).
    """
    host = Path(dest)
    into_dir = len(sources) > 1 or dest.endswith("/") or host.is_dir()
    target_dir, name = (host, "") if into_dir else (host.parent, host.name)
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--copyout: cannot create {dest}: {exc.strerror}") from None
    with services.outbox(target_dir, f"{RUN_DIR}/out", links=True) as outbox:
        _copy(services, ["/bin/sh", "-c", COPY_OUT, "sh", f"{RUN_DIR}/out", name, *sources], with_run_dir(outbox),
              "copyout")


def _copy(services: RootServices, argv: list[str], mounts: list[Mount], stage: str) -> None:
    with services.logs.stage(stage), services.logs.sink(stage) as sink:
        returncode = services.run_in_root(argv, purpose=Purpose.COPY, sink=sink, mounts=mounts)
    if returncode != 0:
        raise RootError(f"--{stage} failed: " + ("\n".join(sink.tail[-5:]) or f"exit code {returncode}"))
