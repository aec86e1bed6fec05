"""Writing files so that a reader sees the old content or the new one, never half of either.

A killed run must not leave a half-written state.json, result.json or cache
record behind: every such file is written to a temporary name beside it and
renamed over the old one (rename is atomic within a file system).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

#: the infix of temporary files written by :func:`write_atomic` (cleaners look for it)
TEMP_INFIX = ".tmp-"


def temp_name(path: Path) -> Path:
    """The temporary file :func:`write_atomic` uses for ``path`` in this process."""
    return path.with_name(f"{path.name}{TEMP_INFIX}{os.getpid()}")


def write_atomic(path: Path, data: str | bytes, *, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` atomically; ``durable`` also fsyncs before the rename.

    The temporary file is removed again if writing fails.
    """
    tmp = temp_name(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        with tmp.open("wb") as handle:
            handle.write(payload)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def deliver_tree(source: Path, destination: Path, *, links: bool = True) -> list[str]:
    """Copy what ``source`` holds into ``destination`` as this process, without privileges; returns the top names.

    ``source`` was written by a sandbox (an unprivileged id on the host):
    nothing in it is trusted. Regular files are copied with their permission
    bits but never setuid, setgid or sticky bits, directories are made or
    merged, symbolic links are copied as links (or left out without
    ``links``: where deb-mock itself writes files later, as in a result
    directory, a link planted there could redirect that write); anything else
    is left out.
    Every step works relative to directory descriptors and never follows a
    link, in ``source`` or in ``destination`` (a link there is replaced, not
    written through).
    """
    destination.mkdir(parents=True, exist_ok=True)
    top = os.open(destination, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    names: list[str] = []
    fds = {".": top}
    try:
        for dirpath, dirnames, filenames, dir_fd in os.fwalk(source):
            relative = os.path.relpath(dirpath, source)
            target_fd = fds[relative]
            if relative == ".":
                names = sorted(dirnames + filenames)
            for name in filenames:
                _deliver_entry(name, dir_fd, target_fd, links)
            for name in dirnames:
                if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                    _deliver_entry(name, dir_fd, target_fd, links)  # a link to a directory: copied as the link
                else:
                    fds[os.path.join(relative, name) if relative != "." else name] = _deliver_dir(name, target_fd)
    finally:
        for fd in fds.values():
            os.close(fd)
    return names


def _deliver_dir(name: str, target_fd: int) -> int:
    try:
        info = os.stat(name, dir_fd=target_fd, follow_symlinks=False)
        if not stat.S_ISDIR(info.st_mode):
            os.unlink(name, dir_fd=target_fd)
            raise FileNotFoundError
    except FileNotFoundError:
        os.mkdir(name, 0o755, dir_fd=target_fd)
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=target_fd)


def _deliver_entry(name: str, dir_fd: int, target_fd: int, links: bool) -> None:
    info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    tmp = f".{name}{TEMP_INFIX}{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp, dir_fd=target_fd)
    if stat.S_ISLNK(info.st_mode):
        if not links:
            return
        os.symlink(os.readlink(name, dir_fd=dir_fd), tmp, dir_fd=target_fd)
    elif stat.S_ISREG(info.st_mode):
        source = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        mode = stat.S_IMODE(info.st_mode) & 0o777
        try:
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                          dir_fd=target_fd)
            try:
                while chunk := os.read(source, 1 << 20):
                    os.write(out, chunk)
                os.fchmod(out, mode)
                os.utime(out, ns=(info.st_atime_ns, info.st_mtime_ns))
            finally:
                os.close(out)
        finally:
            os.close(source)
    else:
        return  # devices, FIFOs, sockets never leave a root
    os.rename(tmp, name, src_dir_fd=target_fd, dst_dir_fd=target_fd)
