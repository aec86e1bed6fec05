"""The filesystem transforms OSTree and bootc expect, applied to a materialised image tree.

File operations on a directory deb-mock owns (no command runs here), every
one through :class:`~.intree.InTree`: paths resolve inside the tree as the
image itself would resolve them, so a link a package ships (``/etc/ssh ->
/tmp/x``) never leads to the host. Each step says which convention it
implements:

- kernel and initramfs in /usr/lib/modules/KVER/ (vmlinuz, initramfs.img), /boot empty;
- /etc carried as /usr/etc (ostree merges it into the deployment's /etc);
- /home /root /opt /srv /mnt /usr/local as links into /var, recreated by tmpfiles.d;
- /sysroot and /ostree for the deployment; an empty /efi for the ESP;
- API filesystems and machine state emptied, logs and caches dropped, so that
  the same packages give the same commit.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .intree import InTree

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

#: serial-getty@.service is Type=idle: its agetty starts only once every other boot job is done, or after
#: 5 s; under TCG that held the login prompt back by about 3 s after its unit had started
SERIAL_GETTY_DROPIN = """\
# deb-mock: the serial console's login prompt as soon as its unit starts, not once every other boot job is done
[Service]
Type=simple
"""


def kernel_versions(tree: Path) -> list[str]:
    """Kernel versions with modules in the tree."""
    with InTree(tree) as image:
        if not image.is_dir("usr/lib/modules"):
            return []
        return [name for name in image.listdir("usr/lib/modules")
                if image.is_file(f"usr/lib/modules/{name}/modules.dep")]


def place_kernel(image: InTree, kver: str) -> None:
    """vmlinuz beside the modules (the initramfs was written there by dracut), /boot emptied."""
    target = f"usr/lib/modules/{kver}/vmlinuz"
    source = f"boot/vmlinuz-{kver}"
    if image.is_file(source):
        image.rename(source, target)
    if not image.is_file(target):
        raise FileNotFoundError(f"the kernel image for {kver} (neither /boot/vmlinuz-{kver} nor vmlinuz)")


def remove_special_files(image: InTree) -> None:
    """ostree commits only files, directories and symlinks (device nodes, fifos, sockets are refused)."""
    for _dirpath, _dirnames, filenames, dir_fd in image.walk():
        for name in filenames:
            mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
                os.unlink(name, dir_fd=dir_fd)


#: mount points as a booted system has them (the copy saw whatever was mounted there, as whoever owned it)
API_DIRS = {"dev": 0o755, "proc": 0o555, "sys": 0o555, "run": 0o755, "tmp": 0o1777}


def _passwd_entry(image: InTree, user: str) -> list[str] | None:
    if not image.is_file("etc/passwd"):
        return None
    for line in image.read_text("etc/passwd").splitlines():
        fields = line.split(":")
        if len(fields) == 7 and fields[0] == user and fields[2].isdigit() and fields[3].isdigit():
            return fields
    return None


def passwd_entry(tree: Path, user: str) -> list[str] | None:
    """``user``'s fields in the tree's /etc/passwd (not the host's), None if it has none."""
    with InTree(tree) as image:
        return _passwd_entry(image, user)


def system_uid(tree: Path, user: str) -> int | None:
    """``user``'s uid in the tree's /etc/passwd."""
    entry = passwd_entry(tree, user)
    return int(entry[2]) if entry else None


def _normalise_apt_partial(image: InTree) -> None:
    """apt's download directory as apt leaves it on a running system: _apt:root 0700.

    Who made it depends on how the base was made (apt as root on the host in
    root mode, apt's sandbox user inside a rootless namespace), which must not
    change the commit.
    """
    partial = "var/cache/apt/archives/partial"
    entry = _passwd_entry(image, "_apt")
    if not image.is_dir(partial) or entry is None:
        return
    if os.geteuid() == 0:
        image.chown(partial, int(entry[2]), 0)
    image.chmod(partial, 0o700)


def drop_volatile(image: InTree) -> None:
    for relative in EMPTIED:
        image.empty(relative)
    for name, mode in API_DIRS.items():
        if not image.is_dir(name):
            image.remove(name)
            image.mkdir(name, mode)
        if os.geteuid() == 0:  # root, or root of a rootless run's namespace
            image.chown(name, 0, 0)
        image.chmod(name, mode)
    for pattern in VOLATILE_GLOBS:
        for name in image.glob(pattern):
            image.remove(name)
    _normalise_apt_partial(image)
    image.write_text("etc/machine-id", "", 0o444)  # empty: systemd makes one on first boot


def normalise_shadow(image: InTree, epoch: int) -> None:
    """The "last password change" day of every account: package scripts write today's date there."""
    if not image.is_file("etc/shadow"):
        return
    day = str(epoch // 86400)
    lines = []
    for line in image.read_text("etc/shadow").splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[2].isdigit():
            fields[2] = day
        lines.append(":".join(fields))
    image.rewrite_text("etc/shadow", "\n".join(lines) + "\n")


def move_to_var(image: InTree) -> None:
    """/home, /root, /opt ... become links into /var, with their contents moved there."""
    image.mkdir("var")
    for link, target in VAR_LINKS.items():
        info = image.lstat(link)
        if info is not None and stat.S_ISDIR(info.st_mode):
            if image.is_dir(target):
                for child in image.listdir(link):
                    image.rename(f"{link}/{child}", f"{target}/{child}")
                image.remove(link)
            else:
                image.remove(target)  # a file or a link where the directory goes: the package's, replaced
                image.rename(link, target)
        image.symlink("../" * link.count("/") + target, link)
    image.symlink("run/media", "media")
    image.mkdir("usr/lib/tmpfiles.d", parents=True)
    image.write_text("usr/lib/tmpfiles.d/deb-mock-ostree.conf", TMPFILES)


def ostree_dirs(image: InTree) -> None:
    """/sysroot (the physical root in a deployment), /ostree pointing into it, /efi for the ESP."""
    for name in ("sysroot", "efi"):
        if not image.is_dir(name):
            image.remove(name)
            image.mkdir(name, 0o755)
    image.symlink("sysroot/ostree", "ostree")


def write_fstab(image: InTree) -> None:
    """The ESP on /efi by its partition label (gpt-auto is off: it fails on a deployment's root).

    Mounted on first access (an automount): as a boot-time mount it waited for
    udev's coldplug in the real root, which under TCG came after its 10 s
    device timeout, so every such boot printed a timeout and left /efi empty.
    """
    image.write_text("etc/fstab", "# deb-mock: / is the OSTree deployment, mounted by the initramfs\n"
                     "PARTLABEL=esp /efi vfat umask=0077,nofail,x-systemd.automount,x-systemd.device-timeout=60s"
                     " 0 2\n")


def ssh_host_keys(image: InTree) -> None:
    """Host keys are made on first boot, never shipped in an image."""
    if image.exists("usr/sbin/sshd"):
        image.mkdir("etc/systemd/system/ssh.service.d", parents=True)
        image.write_text("etc/systemd/system/ssh.service.d/deb-mock-hostkeys.conf", SSH_HOSTKEYS_DROPIN)


def serial_login_at_once(image: InTree) -> None:
    """The serial console's getty runs when its unit starts (Type=idle only kept boot messages off its prompt)."""
    image.mkdir("etc/systemd/system/serial-getty@.service.d", parents=True)
    image.write_text("etc/systemd/system/serial-getty@.service.d/deb-mock-at-once.conf", SERIAL_GETTY_DROPIN)


#: a cloud image's network: DHCP on every wired interface, by systemd-networkd (cloud-init renders for it too)
NETWORKD_DHCP = """\
# deb-mock: a cloud image gets its address by DHCP on any wired interface
[Match]
Name=en* eth*

[Network]
DHCP=yes
"""
CLOUD_CFG = """\
# deb-mock: networking by systemd-networkd; the root partition and file system grow to the disk
system_info:
  network:
    renderers: [networkd]
growpart:
  mode: auto
  devices: ["/"]
resize_rootfs: true
"""


def cloud_image(image: InTree) -> None:
    """cloud-init's settings, and systemd-networkd with DHCP, enabled (not its wait-online: no network, no wait)."""
    if not image.is_dir("etc/cloud"):
        raise FileNotFoundError("cloud_init: /etc/cloud is missing (is cloud-init in the image?)")
    image.mkdir("etc/cloud/cloud.cfg.d", parents=True)
    image.write_text("etc/cloud/cloud.cfg.d/90-deb-mock.cfg", CLOUD_CFG)
    image.mkdir("etc/systemd/network", parents=True)
    image.write_text("etc/systemd/network/80-deb-mock-dhcp.network", NETWORKD_DHCP)
    for target, unit in (("multi-user.target.wants", "systemd-networkd.service"),
                         ("sockets.target.wants", "systemd-networkd.socket")):
        image.mkdir(f"etc/systemd/system/{target}", parents=True)
        image.symlink(f"/usr/lib/systemd/system/{unit}", f"etc/systemd/system/{target}/{unit}")


def etc_to_usr_etc(image: InTree) -> None:
    """ostree's layout: the image's /etc travels as /usr/etc (the default of each deployment's /etc)."""
    image.remove("usr/etc")
    image.rename("etc", "usr/etc")


def apply_all(tree: Path, kver: str, epoch: int, *, cloud_init: bool = False) -> None:
    """Every transform, in order; the tree is left in the commit's form (with /usr/etc)."""
    with InTree(tree) as image:
        for name in ("etc", "usr", "var"):
            if image.lstat(name) is not None and not image.is_dir(name):
                raise NotADirectoryError(f"/{name} in the image is not a directory; refusing to transform it")
        place_kernel(image, kver)
        drop_volatile(image)
        remove_special_files(image)
        normalise_shadow(image, epoch)
        write_fstab(image)
        if cloud_init:
            cloud_image(image)
        ssh_host_keys(image)
        serial_login_at_once(image)
        move_to_var(image)
        ostree_dirs(image)
        etc_to_usr_etc(image)


def tree_size(tree: Path) -> int:
    """Bytes the tree takes on a file system with 4 KiB blocks (hard links counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    with InTree(tree) as image:
        for _dirpath, dirnames, filenames, dir_fd in image.walk():
            for name in filenames + dirnames:
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if (info.st_dev, info.st_ino) in seen:
                    continue
                seen.add((info.st_dev, info.st_ino))
                total += max(4096, (info.st_size + 4095) // 4096 * 4096)
    return total
