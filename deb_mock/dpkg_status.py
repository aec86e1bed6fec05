"""installed-pkgs.log from dpkg's database as the root's layers hold it, read without entering the root.

Every build writes the list of installed packages; asking ``dpkg-query``
for it costs a sandbox entry (a tenth of a second of deb-mock's own time
around a warm build). The database is a file in deb-mock's own layers: the
top layer that has ``var/lib/dpkg/status`` is the one the root sees. It is
read with ``openat`` and ``O_NOFOLLOW`` at every step, so nothing a package
put in the root (a link, say) leads the read anywhere else; anything unusual
on the way (a link, a whiteout, an opaque directory) returns None, and the
caller asks dpkg-query in the sandbox instead. The lines are what
``dpkg-query --show --showformat='${binary:Package} ${Version}\\n'`` prints.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence

STATUS = ("var", "lib", "dpkg", "status")
#: overlayfs marks an upper directory that hides everything below it (user.* in user namespaces)
_OPAQUE = ("user.overlay.opaque", "trusted.overlay.opaque")


def read_status(layers: Sequence[str]) -> bytes | None:
    """The status file the overlay of ``layers`` (topmost first) shows; None when unsure."""
    for layer in layers:
        found, content = _read_in_layer(layer)
        if found:
            return content
    return None


def layer_touches_status(layer: str) -> bool:
    """Whether ``layer`` has its own say on dpkg's status: the file, or a link, whiteout or opaque dir on the way."""
    return _read_in_layer(layer)[0]


def _read_in_layer(layer: str) -> tuple[bool, bytes | None]:
    """(decided, content): decided is True when this layer settles what the overlay shows."""
    try:
        fd = os.open(layer, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return True, None
    opaque = False
    try:
        for part in STATUS[:-1]:
            try:
                next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except FileNotFoundError:
                return opaque, None  # not in this layer: below an opaque dir it is gone, else the next decides
            except OSError:
                return True, None  # a link or a whiteout on the way: ask dpkg-query instead
            os.close(fd)
            fd = next_fd
            opaque = opaque or _opaque(fd)  # the layers below no longer show through
        if _exists(fd, STATUS[-1]):
            return True, _read_file(fd)
        return opaque, None
    finally:
        os.close(fd)


def _opaque(fd: int) -> bool:
    for name in _OPAQUE:
        try:
            if os.getxattr(fd, name) == b"y":
                return True
        except OSError:
            continue
    return False


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _read_file(dir_fd: int) -> bytes | None:
    """The status file if it is a regular file (a FIFO a package made there must not block the read)."""
    try:
        if not stat.S_ISREG(os.stat(STATUS[-1], dir_fd=dir_fd, follow_symlinks=False).st_mode):
            return None
        fd = os.open(STATUS[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read()


def installed_packages(status: bytes) -> list[dict[str, str]]:
    """Every package dpkg knows as present: name, version, architecture (result.json's ``root_packages``)."""
    packages = []
    for stanza in status.decode("utf-8", "replace").split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        name, state = fields.get("Package"), fields.get("Status", "").split()
        if not name or len(state) != 3 or state[2] == "not-installed":
            continue
        packages.append({"name": name, "version": fields.get("Version", ""),
                         "architecture": fields.get("Architecture", ""), "multi_arch": fields.get("Multi-Arch", "")})
    return sorted(packages, key=lambda p: (p["name"], p["architecture"]))


def installed_lines(packages: list[dict[str, str]], native_arch: str) -> list[str]:
    """``${binary:Package} ${Version}`` of each package, sorted, as dpkg-query prints them.

    binary:Package carries ``:ARCH`` for Multi-Arch: same packages and for
    those of another architecture than the native one (not ``all``), as dpkg
    prints it.
    """
    lines = []
    for package in packages:
        name, arch, version = package["name"], package["architecture"], package["version"]
        qualified = package.get("multi_arch") == "same" or arch not in ("all", native_arch, "")
        lines.append(f"{name}:{arch} {version}" if qualified else f"{name} {version}")
    return sorted(lines)
