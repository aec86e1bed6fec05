"""The filesystem transforms OSTree and bootc expect, applied to a materialised image tree.

Pure file operations on a directory deb-mock owns (no command runs here).
Symlinks in the tree point into the image, never at the host: nothing here
follows one. Each step says which convention it implements:

- kernel and initramfs in /usr/lib/modules/KVER/ (vmlinuz, initramfs.img), /boot empty;
- /etc carried as /usr/etc (ostree merges it into the deployment's /etc);
- /home /root /opt /srv /mnt /usr/local as links into /var, recreated by tmpfiles.d;
- /sysroot and /ostree for the deployment; an empty /efi for the ESP;
- API filesystems and machine state emptied, logs and caches dropped, so that
  the same packages give the same commit.
"""

from __future__ import annotations

import glob
import os
import stat
from pathlib import Path

from deb_mock.layerstore import remove_tree

#: directories moved under /var (ostree keeps only /usr and /etc from a commit; /var is the machine's)
VAR_LINKS = {"home": "var/home", "root": "var/roothome", "opt": "var/opt", "srv": "var/srv", "mnt": "var/mnt",
             "usr/local": "var/usrlocal"}
TMPFILES = """\
# deb-mock: the directories an OSTree deployment keeps under /var (see ostree(1), "var")
d /var/home 0755 root root -
d /var/roothome 0700 root root -
d /var/opt 0755 root root -
d /var/srv 0755 root root -
d /var/mnt 0755 root root -
d /var/usrlocal 0755 root root -
d /var/usrlocal/bin 0755 root root -
d /run/media 0755 root root -
"""
#: emptied: mount points of API file systems and machine-local state
EMPTIED = ("dev", "proc", "sys", "run", "tmp", "var/tmp", "boot", "var/cache/apt/archives/partial",
           "var/lib/apt/lists", "var/cache/man", "var/lib/dhcp")
#: removed: files that record when or where a tree was made, not what it holds
VOLATILE_GLOBS = ("var/log/*.log", "var/log/apt/*", "var/log/journal/*", "var/cache/apt/*.bin",
                  "var/cache/apt/archives/*.deb", "var/cache/debconf/*-old", "var/lib/dpkg/*-old",
                  "var/cache/ldconfig/aux-cache", "var/lib/systemd/random-seed", "var/lib/dbus/machine-id",
                  "etc/*-", "etc/ssh/ssh_host_*", "vmlinuz", "vmlinuz.old", "initrd.img", "initrd.img.old",
                  "var/lib/apt/extended_states.*")
SSH_HOSTKEYS_DROPIN = """\
# deb-mock: every machine made from this image gets its own host keys on first boot
[Service]
ExecStartPre=-/usr/bin/ssh-keygen -A
"""


def _empty_dir(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        return
    for child in path.iterdir():
        remove_tree(child)


def kernel_versions(tree: Path) -> list[str]:
    """Kernel versions with modules in the tree."""
    modules = tree / "usr/lib/modules"
    return sorted(p.name for p in modules.iterdir() if (p / "modules.dep").exists()) if modules.is_dir() else []


def place_kernel(tree: Path, kver: str) -> None:
    """vmlinuz beside the modules (the initramfs was written there by dracut), /boot emptied."""
    target = tree / "usr/lib/modules" / kver / "vmlinuz"
    source = tree / "boot" / f"vmlinuz-{kver}"
    if source.is_file() and not source.is_symlink():
        os.replace(source, target)
    if not target.is_file():
        raise FileNotFoundError(f"the kernel image for {kver} (neither /boot/vmlinuz-{kver} nor {target.name})")


def remove_special_files(tree: Path) -> None:
    """ostree commits only files, directories and symlinks (device nodes, fifos, sockets are refused)."""
    for dirpath, _dirnames, filenames in os.walk(tree):
        for name in filenames:
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
                os.unlink(path)


#: mount points as a booted system has them (the copy saw whatever was mounted there, as whoever owned it)
API_DIRS = {"dev": 0o755, "proc": 0o555, "sys": 0o555, "run": 0o755, "tmp": 0o1777}


def passwd_entry(tree: Path, user: str) -> list[str] | None:
    """``user``'s fields in the tree's /etc/passwd (not the host's), None if it has none."""
    passwd = tree / "etc/passwd"
    if passwd.is_symlink() or not passwd.is_file():
        return None
    for line in passwd.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split(":")
        if len(fields) == 7 and fields[0] == user and fields[2].isdigit() and fields[3].isdigit():
            return fields
    return None


def system_uid(tree: Path, user: str) -> int | None:
    """``user``'s uid in the tree's /etc/passwd."""
    entry = passwd_entry(tree, user)
    return int(entry[2]) if entry else None


def _normalise_apt_partial(tree: Path) -> None:
    """apt's download directory as apt leaves it on a running system: _apt:root 0700.

    Who made it depends on how the base was made (apt as root on the host in
    root mode, apt's sandbox user inside a rootless namespace), which must not
    change the commit.
    """
    partial = tree / "var/cache/apt/archives/partial"
    uid = system_uid(tree, "_apt")
    if partial.is_symlink() or not partial.is_dir() or uid is None:
        return
    if os.geteuid() == 0:
        os.chown(partial, uid, 0)
    partial.chmod(0o700)


def drop_volatile(tree: Path) -> None:
    for relative in EMPTIED:
        _empty_dir(tree / relative)
    for name, mode in API_DIRS.items():
        path = tree / name
        if path.is_symlink() or path.is_file():
            path.unlink()
        path.mkdir(exist_ok=True)
        if os.geteuid() == 0:  # root, or root of a rootless run's namespace
            os.chown(path, 0, 0)
        path.chmod(mode)
    for pattern in VOLATILE_GLOBS:
        for name in glob.glob(pattern, root_dir=tree):  # unlike Path.glob, finds dangling links too
            path = tree / name
            if path.is_symlink() or path.is_file():
                path.unlink()
            elif path.is_dir():
                remove_tree(path)
    _normalise_apt_partial(tree)
    machine_id = tree / "etc/machine-id"
    if machine_id.exists() or machine_id.is_symlink():
        machine_id.unlink()
    machine_id.write_text("")  # empty: systemd makes one on first boot
    machine_id.chmod(0o444)


def normalise_shadow(tree: Path, epoch: int) -> None:
    """The "last password change" day of every account: package scripts write today's date there."""
    for name in ("etc/shadow",):
        path = tree / name
        if not path.is_file():
            continue
        day = str(epoch // 86400)
        lines = []
        for line in path.read_text().splitlines():
            fields = line.split(":")
            if len(fields) > 2 and fields[2].isdigit():
                fields[2] = day
            lines.append(":".join(fields))
        info = path.stat()
        path.write_text("\n".join(lines) + "\n")
        os.chown(path, info.st_uid, info.st_gid)
        path.chmod(stat.S_IMODE(info.st_mode))


def move_to_var(tree: Path) -> None:
    """/home, /root, /opt ... become links into /var, with their contents moved there."""
    (tree / "var").mkdir(exist_ok=True)
    for link, target in VAR_LINKS.items():
        source, destination = tree / link, tree / target
        if source.is_symlink():
            source.unlink()
        elif source.is_dir():
            if destination.exists():
                for child in source.iterdir():
                    os.replace(child, destination / child.name)
                source.rmdir()
            else:
                os.replace(source, destination)
        depth = link.count("/")
        source.symlink_to("../" * depth + target)
    media = tree / "media"
    if media.is_symlink() or media.exists():
        remove_tree(media)
    media.symlink_to("run/media")
    tmpfiles = tree / "usr/lib/tmpfiles.d/deb-mock-ostree.conf"
    tmpfiles.parent.mkdir(parents=True, exist_ok=True)
    tmpfiles.write_text(TMPFILES)


def ostree_dirs(tree: Path) -> None:
    """/sysroot (the physical root in a deployment), /ostree pointing into it, /efi for the ESP."""
    for name in ("sysroot", "efi"):
        (tree / name).mkdir(mode=0o755, exist_ok=True)
    link = tree / "ostree"
    if link.is_symlink() or link.exists():
        remove_tree(link)
    link.symlink_to("sysroot/ostree")


def write_fstab(tree: Path) -> None:
    """The ESP on /efi by its partition label (gpt-auto is off: it fails on a deployment's root)."""
    fstab = tree / "etc/fstab"
    fstab.write_text("# deb-mock: / is the OSTree deployment, mounted by the initramfs\n"
                     "PARTLABEL=esp /efi vfat umask=0077,nofail,x-systemd.device-timeout=10s 0 2\n")


def ssh_host_keys(tree: Path) -> None:
    """Host keys are made on first boot, never shipped in an image."""
    if (tree / "usr/sbin/sshd").exists():
        dropin = tree / "etc/systemd/system/ssh.service.d/deb-mock-hostkeys.conf"
        dropin.parent.mkdir(parents=True, exist_ok=True)
        dropin.write_text(SSH_HOSTKEYS_DROPIN)


def etc_to_usr_etc(tree: Path) -> None:
    """ostree's layout: the image's /etc travels as /usr/etc (the default of each deployment's /etc)."""
    target = tree / "usr/etc"
    if target.exists():
        remove_tree(target)
    os.replace(tree / "etc", target)


def usr_etc_to_etc(tree: Path) -> None:
    """Undo :func:`etc_to_usr_etc` (the OCI image carries /etc where containers expect it)."""
    os.replace(tree / "usr/etc", tree / "etc")


def apply_all(tree: Path, kver: str, epoch: int) -> None:
    """Every transform, in order; the tree is left in the commit's form (with /usr/etc)."""
    place_kernel(tree, kver)
    drop_volatile(tree)
    remove_special_files(tree)
    normalise_shadow(tree, epoch)
    write_fstab(tree)
    ssh_host_keys(tree)
    move_to_var(tree)
    ostree_dirs(tree)
    etc_to_usr_etc(tree)


def tree_size(tree: Path) -> int:
    """Bytes the tree takes on a file system with 4 KiB blocks (hard links counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in filenames + dirnames:
            info = os.lstat(os.path.join(dirpath, name))
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            total += max(4096, (info.st_size + 4095) // 4096 * 4096)
    return total

