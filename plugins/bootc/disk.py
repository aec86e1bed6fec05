"""The bootable disk: an OSTree deployment on ext4 and a fixed standalone GRUB on the ESP.

Built without any mount (mkfs.ext4 -d, mtools), so it works where vfat cannot
be mounted. The boot arrangement is the one proven to upgrade atomically
with Debian's tools alone: the ESP holds only a standalone GRUB that never
changes; it finds the root file system by UUID and reads the syslinux.cfg
that ostree rewrites (and swaps atomically) on every deploy, upgrade and
set-default. Filesystem UUIDs, the FAT volume id and the GPT ids derive from
the commit checksum, so the same commit gives the same bytes and different
commits give different ids.
"""

from __future__ import annotations

import dataclasses
import re
import uuid

from deb_mock.errors import ConfigError, RootError

#: Discoverable Partitions Specification type codes
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
ROOT_TYPE = {"amd64": "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "arm64": "B921B045-1DF0-41C3-AF44-4C6F280D3FAE"}
EFI_BINARY = {"amd64": ("x86_64-efi", "BOOTX64.EFI"), "arm64": ("arm64-efi", "BOOTAA64.EFI")}
GRUB_MODULES = "part_gpt ext2 search_fs_uuid linux normal configfile syslinuxcfg echo serial terminal test"
MIB = 1 << 20
#: /etc/.updated and /var/.updated in a deployment (`ostree admin deploy` leaves them out), as
#: systemd-update-done writes them: /usr's time (ostree's 0) is not newer, so the first boot skips
#: ldconfig and update-done; a shell script for the tools sandbox, $1 the stateroot (ostree/deploy/OS)
UPDATE_STAMPS = r"""
for etc in "$1"/deploy/*.0/etc; do
  nsec=$(( $(stat -c %Y "$etc/../usr") * 1000000000 ))
  for dir in "$etc" "$1/var"; do
    printf '# This file was created by deb-mock, as systemd-update-done would.\nTIMESTAMP_NSEC=%s\n' \
      "$nsec" > "$dir/.updated"
  done
done
"""
NAMESPACE = uuid.UUID("6b1f4c1e-3c55-4a0e-9d0a-3c0f6d2b8e11")
#: the syslinux.cfg ostree keeps rewriting (PROMPT and TIMEOUT survive every rewrite); 1 s to pick
#: an older deployment on the console (GRUB counts TIMEOUT's tenths in whole seconds)
SYSLINUX_SEED = "PROMPT 0\nTIMEOUT 10\n"
_SIZE = re.compile(r"^(\d+)([KMGT]?)$", re.IGNORECASE)


def parse_size(text: str, key: str) -> int:
    """"512M", "8G", "4096" (bytes) → bytes; a clear error names the key."""
    match = _SIZE.match(text.strip())
    if not match:
        raise ConfigError(f"{key} '{text}': expected a size such as 512M or 8G")
    number, unit = int(match.group(1)), match.group(2).upper()
    return number * {"": 1, "K": 1 << 10, "M": MIB, "G": 1 << 30, "T": 1 << 40}[unit]


def human(size: int) -> str:
    return f"{size / (1 << 30):.1f}G" if size >= 1 << 30 else f"{size // MIB}M"


@dataclasses.dataclass(frozen=True)
class DiskIds:
    """Every id of a disk, derived from the commit (and the image's settings)."""

    disk: str
    esp_part: str
    root_part: str
    root_fs: str
    esp_volume: str

    @classmethod
    def derive(cls, seed: str) -> DiskIds:
        def make(name: str) -> str:
            return str(uuid.uuid5(NAMESPACE, f"{seed}/{name}"))

        return cls(disk=make("disk"), esp_part=make("esp-part"), root_part=make("root-part"),
                   root_fs=make("root-fs"), esp_volume=make("esp-volume").replace("-", "")[:8].upper())


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Where the partitions go (1 MiB aligned, room for the backup GPT at the end)."""

    total: int
    esp: int
    root: int

    @property
    def esp_start(self) -> int:
        return MIB

    @property
    def root_start(self) -> int:
        return MIB + self.esp

    @classmethod
    def plan(cls, disk_size: str, esp_size: str, needed: int) -> Geometry:
        """Sizes for a tree needing ``needed`` bytes; too small a disk is an error saying how big it must be."""
        esp = parse_size(esp_size, "plugins.bootc.esp_size")
        if esp < 64 * MIB:
            raise ConfigError(f"plugins.bootc.esp_size {esp_size}: FAT32 needs at least 64M")
        minimum_root = needed + needed // 5 + 64 * MIB  # file system metadata and journal
        minimum = _round_up(2 * MIB + esp + minimum_root, MIB)
        if disk_size == "auto":
            total = max(4 << 30, _round_up(2 * MIB + esp + needed * 5 // 2, 1 << 30))
        else:
            total = _round_up(parse_size(disk_size, "plugins.bootc.disk_size"), MIB)
            if total < minimum:
                raise ConfigError(f"disk size {disk_size} is too small for this image: it needs at least "
                                  f"{human(_round_up(minimum, 1 << 28))} (the deployment takes {human(needed)})",
                                  hint="use --bootc-image-size or plugins.bootc.disk_size")
        return cls(total=total, esp=esp, root=total - 2 * MIB - esp)


def _round_up(value: int, unit: int) -> int:
    return (value + unit - 1) // unit * unit


def sfdisk_script(geometry: Geometry, ids: DiskIds, arch: str) -> str:
    """The GPT, with fixed ids (bookworm's and trixie's sfdisk give the same bytes from it)."""
    sector = 512
    return (
        "label: gpt\n"
        f"label-id: {ids.disk.upper()}\n"
        "unit: sectors\n"
        "first-lba: 2048\n"
        f"start={geometry.esp_start // sector}, size={geometry.esp // sector}, type={ESP_TYPE}, "
        f"uuid={ids.esp_part.upper()}, name=\"esp\"\n"
        f"start={geometry.root_start // sector}, size={geometry.root // sector}, type={ROOT_TYPE[arch]}, "
        f"uuid={ids.root_part.upper()}, name=\"root\"\n"
    )


def grub_stub(ids: DiskIds, syslinux_root: str, arch: str) -> str:
    """The config embedded in the standalone GRUB: serial console, find the root, read ostree's syslinux.cfg.

    On amd64 GRUB drives the first UART itself beside the firmware's
    console. arm64-efi GRUB has no UART driver of its own (``serial`` is
    an error there); UEFI's console on arm64 machines is the serial port.
    """
    serial = ("serial --unit=0 --speed=115200\n"
              "terminal_input serial console\n"
              "terminal_output serial console\n") if arch == "amd64" else ""
    return (
        serial
        + f"search --no-floppy --fs-uuid --set=root {ids.root_fs}\n"
        f"syslinux_configfile -r {syslinux_root} /boot/syslinux/syslinux.cfg\n"
    )


def syslinux_root_for(config_text: str) -> str:
    """The directory GRUB's syslinux parser resolves ostree's paths against.

    ostree writes kernel paths relative to /boot (``/ostree/…``) unless the
    sysroot is configured with a boot prefix (``/boot/ostree/…``).
    """
    for line in config_text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0].upper() == "KERNEL":
            return "/" if words[1].startswith("/boot/") else "/boot"
    raise RootError("bootc: ostree wrote no KERNEL line into syslinux.cfg:\n" + config_text)


def kernel_args(settings_args: tuple[str, ...], ids: DiskIds) -> list[str]:
    """The deployment's kernel command line: deb-mock's fixed part, then the config's."""
    return [f"root=UUID={ids.root_fs}", "rw", "systemd.gpt_auto=0", *settings_args]
