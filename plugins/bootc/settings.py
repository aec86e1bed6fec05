"""The ``plugins.bootc`` config section: what goes into the image and how it boots.

Defaults give an image that boots on amd64 UEFI machines with a serial
console; everything a user may want to change is a key here, documented in
deb-mock.yaml(5).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

PLUGIN_NAME = "bootc"

#: boot packages by architecture: kernel, init, ostree with its dracut module, an initramfs generator
DEFAULT_BOOT_PACKAGES: dict[str, tuple[str, ...]] = {
    "amd64": ("linux-image-amd64", "systemd-sysv", "udev", "dbus", "dracut", "ostree", "ostree-boot", "kmod",
              "e2fsprogs"),
    "arm64": ("linux-image-arm64", "systemd-sysv", "udev", "dbus", "dracut", "ostree", "ostree-boot", "kmod",
              "e2fsprogs"),
}
#: the tools deb-mock runs from the target's own release (never the host's), in a layer above the image
TOOL_PACKAGES: dict[str, tuple[str, ...]] = {
    "amd64": ("ostree", "e2fsprogs", "dosfstools", "mtools", "fdisk", "grub-efi-amd64-bin", "qemu-utils", "zstd",
              "gzip", "tar"),
    "arm64": ("ostree", "e2fsprogs", "dosfstools", "mtools", "fdisk", "grub-efi-arm64-bin", "qemu-utils", "zstd",
              "gzip", "tar"),
}


#: the kernel's serial console by architecture: what qemu's machine (q35, virt) and most clouds wire up
DEFAULT_KERNEL_ARGS: dict[str, tuple[str, ...]] = {
    "amd64": ("console=ttyS0,115200",),
    "arm64": ("console=ttyAMA0,115200",),
}


#: vCPUs of a machine whose qemu_cpus is 0 (automatic), where one vCPU is not the quicker choice
DEFAULT_VCPUS = 2


#: what a cloud image adds (cloud_init: true): cloud-init, growpart for the root's partition, ip for cloud-init
CLOUD_PACKAGES = ("cloud-init", "cloud-guest-utils", "iproute2")


@dataclasses.dataclass(frozen=True)
class User:
    """A login created in the image."""

    name: str
    #: supplementary groups (they must exist in the image: sudo, adm, ...)
    groups: tuple[str, ...] = ()
    #: public keys written to ~/.ssh/authorized_keys
    ssh_keys: tuple[str, ...] = ()
    #: a plain password, or "hashed:" followed by a crypt(3) hash; empty: no password (key login only)
    password: str = ""
    shell: str = "/bin/bash"
    #: fixed uid (empty: the next free one)
    uid: int | None = None


@dataclasses.dataclass(frozen=True)
class Settings:
    """The ``plugins.bootc`` section."""

    enabled: bool = True
    #: boot packages installed into the image layer; empty: the defaults for the root's architecture
    boot_packages: tuple[str, ...] = ()
    #: more packages for the image only (the build root is never changed)
    packages: tuple[str, ...] = ()
    #: a cloud image: cloud-init (with its NoCloud, EC2, GCE, Azure ... data sources), networking by
    #: systemd-networkd with DHCP, and a root partition and file system that grow to the disk at first boot
    cloud_init: bool = False
    #: kernel command line besides root=, rw and systemd.gpt_auto=0 (which deb-mock sets);
    #: None: the architecture's serial console (DEFAULT_KERNEL_ARGS)
    kernel_args: tuple[str, ...] | None = None
    hostname: str = "debian"
    #: root's password, plain or "hashed:" + crypt(3) hash; empty with lock_root false: no password at all
    root_password: str = ""
    #: lock root's password (log in as a configured user instead)
    lock_root: bool = False
    users: tuple[User, ...] = ()
    filesystem: Literal["ext4"] = "ext4"
    #: disk image size (512M, 8G …) or "auto" (room for two deployments, at least 4G)
    disk_size: str = "auto"
    #: size of the EFI system partition
    esp_size: str = "128M"
    #: the OSTree ref committed to and deployed; empty: debian/SUITE/ARCH
    ref: str = ""
    #: the stateroot (ostree's "os") of the deployment
    os_name: str = "debian"
    #: where the booted system looks for updates (ostree admin upgrade); a file:// path or an http(s) URL
    update_url: str = "file:///var/mnt/updates"
    #: name of that remote in the image's repository
    remote: str = "deb-mock"
    #: verify the remote's GPG signatures (needs the key in the image)
    gpg_verify: bool = False
    #: compression of the OCI layer
    oci_compression: Literal["gzip", "zstd", "none"] = "gzip"
    #: tag of the OCI image when the destination names none
    oci_tag: str = "latest"
    #: seconds since the epoch for every timestamp; 0: the newest package changelog date in the image
    source_date_epoch: int = 0
    #: reuse stages whose inputs did not change
    cache: bool = True
    #: qemu accelerator for --bootc-run (KVM where the host can run guests)
    qemu_accel: Literal["tcg", "kvm"] = "tcg"
    #: where --bootc-run's qemu and firmware come from under TCG: "tools", a tree of the run's release made once
    #: with mmdebstrap and run in a sandbox (see boot_tools), or "host", the host's packages
    qemu_from: Literal["tools", "host"] = "tools"
    #: "tools" trees older than this are made anew before a boot (qemu's updates reach them so)
    qemu_tools_max_age_days: int = 15
    qemu_memory: str = "2048"
    #: vCPUs; 0: one under TCG on amd64 (one thread runs them all, see qemu.Machine.vcpus), else DEFAULT_VCPUS
    qemu_cpus: int = 0

    def kernel_args_for(self, arch: str) -> tuple[str, ...]:
        """The configured kernel arguments, or the serial console of ``arch``'s usual machine."""
        if self.kernel_args is not None:
            return self.kernel_args
        return DEFAULT_KERNEL_ARGS.get(arch, ())
