"""File operations inside an image tree that resolve every path as the image would: never on the host.

An image tree comes from packages, and a package may ship ``/etc/ssh`` as a
link to ``/tmp/victim`` or ``/home/alice``. Plain path operations from the
host would follow such a link to the host's directory. Here every path is
resolved with openat2(2) and RESOLVE_IN_ROOT, as if the tree were ``/``
(an absolute link or ``..`` cannot leave it), and the final component is
acted on relative to its directory's file descriptor without following it.
So a link in the tree changes at most which file *of the tree* is touched,
exactly as it would on the booted image.
"""

from __future__ import annotations

import contextlib
import ctypes
import fnmatch
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import PurePosixPath

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
#: openat2's number is the same in the generic and the x86-64 tables
SYS_OPENAT2 = 437
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class TreeError(OSError):
    """An operation on the image tree failed; the message names the path in the image."""


class InTree:
    """One image tree, opened once; paths are the image's (``etc/hostname`` or ``/etc/hostname``)."""

    def __init__(self, top: str | os.PathLike[str]) -> None:
        self.top = os.fspath(top)
        self.fd = os.open(self.top, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> InTree:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- resolution ---------------------------------------------------------------------------

    def _open(self, path: str, flags: int, mode: int = 0) -> int:
        how = _OpenHow(flags | os.O_CLOEXEC, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
        fd = _libc.syscall(ctypes.c_long(SYS_OPENAT2), ctypes.c_int(self.fd), os.fsencode(path.lstrip("/") or "."),
                           ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
        if fd < 0:
            err = ctypes.get_errno()
            raise TreeError(err, f"/{path.lstrip('/')} in the image: {os.strerror(err)}")
        return int(fd)

    @contextlib.contextmanager
    def parent(self, path: str) -> Iterator[tuple[int, str]]:
        """The directory holding ``path`` (resolved in the tree) as an fd, and the final name."""
        pure = PurePosixPath("/", path)
        if pure.name in ("", ".", ".."):
            raise TreeError(f"/{path.lstrip('/')}: not a name in a directory")
        fd = self._open(str(pure.parent), os.O_PATH | os.O_DIRECTORY)
        try:
            yield fd, pure.name
        finally:
            os.close(fd)

    # -- queries ------------------------------------------------------------------------------

    def lstat(self, path: str) -> os.stat_result | None:
        """The entry itself (a link is not followed); None if it or its directory does not exist."""
        if str(PurePosixPath("/", path)) == "/":
            return os.fstat(self.fd)
        try:
            with self.parent(path) as (fd, name):
                return os.stat(name, dir_fd=fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except TreeError as exc:
            if exc.errno in (2, 20):  # ENOENT, ENOTDIR on the way
                return None
            raise

    def is_dir(self, path: str) -> bool:
        info = self.lstat(path)
        return info is not None and stat.S_ISDIR(info.st_mode)

    def is_file(self, path: str) -> bool:
        info = self.lstat(path)
        return info is not None and stat.S_ISREG(info.st_mode)

    def exists(self, path: str) -> bool:
        return self.lstat(path) is not None

    def listdir(self, path: str) -> list[str]:
        fd = self._open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            return sorted(os.listdir(fd))
        finally:
            os.close(fd)

    def glob(self, pattern: str) -> list[str]:
        """Entries matching ``pattern``, whose wildcards may only be in its last component."""
        pure = PurePosixPath(pattern.lstrip("/"))
        if not self.is_dir(str(pure.parent)):
            return []
        return [str(pure.parent / name) for name in self.listdir(str(pure.parent))
                if fnmatch.fnmatchcase(name, pure.name) and not name.startswith(".")]

    def read_text(self, path: str) -> str:
        """A regular file's text (a link as the final component is refused)."""
        fd = self._open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    # -- changes ------------------------------------------------------------------------------

    def write_text(self, path: str, text: str, mode: int = 0o644) -> None:
        """Replace ``path`` by a new regular file (a link there is replaced, never written through)."""
        self.remove(path)
        fd = self._open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(text)

    def rewrite_text(self, path: str, text: str) -> None:
        """Change a regular file's content in place, keeping its owner and mode."""
        fd = self._open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)

    def mkdir(self, path: str, mode: int = 0o755, *, parents: bool = False) -> None:
        """Make a directory (an existing one is kept); with ``parents`` the missing ones above it too."""
        if self.is_dir(path):
            return
        pure = PurePosixPath("/", path)
        if parents and str(pure.parent) != "/":
            self.mkdir(str(pure.parent), 0o755, parents=True)
        with self.parent(path) as (fd, name), contextlib.suppress(FileExistsError):
            os.mkdir(name, mode, dir_fd=fd)

    def chown(self, path: str, uid: int, gid: int) -> None:
        with self.parent(path) as (fd, name):
            os.chown(name, uid, gid, dir_fd=fd, follow_symlinks=False)

    def chmod(self, path: str, mode: int) -> None:
        """Change a file's or directory's mode (a link is refused: its target is not ours to change)."""
        fd = self._open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)

    def symlink(self, target: str, path: str) -> None:
        """Make ``path`` a link to ``target`` (whatever was there goes)."""
        self.remove(path)
        with self.parent(path) as (fd, name):
            os.symlink(target, name, dir_fd=fd)

    def rename(self, source: str, destination: str) -> None:
        with self.parent(source) as (source_fd, source_name), self.parent(destination) as (dest_fd, dest_name):
            os.rename(source_name, dest_name, src_dir_fd=source_fd, dst_dir_fd=dest_fd)

    def remove(self, path: str) -> None:
        """Delete an entry, a directory with all it holds (nothing below a link is followed); absent is fine."""
        info = self.lstat(path)
        if info is None:
            return
        with self.parent(path) as (fd, name):
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(name, dir_fd=fd)
            else:
                os.unlink(name, dir_fd=fd)

    def empty(self, path: str) -> None:
        """Delete what a directory holds (a link instead of a directory is left alone)."""
        if self.is_dir(path):
            for name in self.listdir(path):
                self.remove(f"{path.rstrip('/')}/{name}")

    def walk(self) -> Iterator[tuple[str, list[str], list[str], int]]:
        """os.fwalk of the whole tree (links are never followed): (dirpath, dirs, files, dir_fd)."""
        yield from os.fwalk(".", dir_fd=self.fd)

    def walk_below(self, top: str) -> Iterator[tuple[str, list[str], list[str], int]]:
        """os.fwalk below ``top`` (links never followed), with paths relative to the tree."""
        fd = self._open(top, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for dirpath, dirs, files, dir_fd in os.fwalk(".", dir_fd=fd):
                yield os.path.normpath(f"{top}/{dirpath}"), dirs, files, dir_fd
        finally:
            os.close(fd)
