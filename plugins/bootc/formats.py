"""Disk image formats by file extension: what qemu-img writes, and the two packages clouds import.

qemu-img writes the disk formats hypervisors and clouds read (qcow2,
VMDK, VDI for VirtualBox, VHDX for Hyper-V, a fixed VHD for Azure, whose
size must be a whole number of MiB: deb-mock's disks always are). Google
Compute Engine imports a gzip'd tar holding ``disk.raw``; VirtualBox and
VMware import an OVA: a tar of an OVF descriptor, a stream-optimised VMDK
and a manifest of their SHA-256 digests. The descriptor asks for UEFI
firmware, which the image needs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

from deb_mock.errors import UsageError

Package = Literal["", "gce", "ova"]


@dataclasses.dataclass(frozen=True)
class Format:
    """One output format: its name, qemu-img's ``-O`` and ``-o`` for it, and the package around the disk."""

    name: str
    qemu: str
    options: tuple[str, ...] = ()
    package: Package = ""


#: by extension, longest first where one ends another (.tar.gz before .gz)
FORMATS: dict[str, Format] = {
    ".tar.gz": Format("gce", "raw", package="gce"),
    ".qcow2": Format("qcow2", "qcow2"),
    ".raw": Format("raw", "raw"),
    ".img": Format("raw", "raw"),
    ".vmdk": Format("vmdk", "vmdk"),
    ".vdi": Format("vdi", "vdi"),
    ".vhd": Format("vhd", "vpc", ("subformat=fixed", "force_size=on")),
    ".vhdx": Format("vhdx", "vhdx"),
    ".ova": Format("ova", "vmdk", ("subformat=streamOptimized",), package="ova"),
}
#: qemu's name of the format of a disk qemu can boot, by extension (--bootc-run)
BOOTABLE = {".qcow2": "qcow2", ".vmdk": "vmdk", ".vdi": "vdi", ".vhd": "vpc", ".vhdx": "vhdx", ".raw": "raw",
            ".img": "raw"}


def format_for(path: Path) -> Format:
    """The format ``path``'s extension names; exit 5 for any other."""
    name = path.name.lower()
    for extension, fmt in FORMATS.items():
        if name.endswith(extension):
            return fmt
    raise UsageError(f"--bootc-image {path}: the extension must be one of {', '.join(FORMATS)}")


def qemu_convert(fmt: Format, raw: str, out: str) -> list[str]:
    """qemu-img's conversion of the raw disk to ``fmt``'s disk (the VMDK inside an OVA, say)."""
    argv = ["qemu-img", "convert", "-f", "raw", "-O", fmt.qemu]
    if fmt.options:
        argv += ["-o", ",".join(fmt.options)]
    return [*argv, raw, out]


def gce_command(work: str, out: str, epoch: int) -> list[str]:
    """GCE's image file: ``disk.raw`` (sparse, in GNU's old format as GCE asks) in a gzip'd tar, reproducibly."""
    script = ('tar --create --format=oldgnu --sparse --owner=0 --group=0 --numeric-owner --mtime="@$3" '
              '--directory "$1" --file - disk.raw | gzip -n -6 > "$2"')
    return ["/bin/sh", "-c", script, "sh", work, out, str(epoch)]


def ova_command(stage: str, out: str, epoch: int) -> list[str]:
    """The OVA: a ustar archive with the descriptor first, then the disk and the manifest (as OVF says)."""
    return ["tar", "--create", "--format=ustar", "--owner=0", "--group=0", "--numeric-owner", f"--mtime=@{epoch}",
            "--directory", stage, "--file", out, "disk.ovf", "disk.vmdk", "disk.mf"]


def write_ova_descriptor(stage: Path, *, name: str, capacity: int, cpus: int, memory_mib: int) -> None:
    """disk.ovf beside disk.vmdk, and disk.mf with the SHA-256 of both (the VMDK is read, never followed)."""
    vmdk_size, vmdk_digest = _size_and_digest(stage / "disk.vmdk")
    ovf = OVF_TEMPLATE.format(name=quoteattr(name), name_text=escape(name), vmdk_size=vmdk_size,
                              capacity=capacity, cpus=cpus, memory=memory_mib)
    (stage / "disk.ovf").write_text(ovf, encoding="utf-8")
    ovf_digest = hashlib.sha256(ovf.encode()).hexdigest()
    (stage / "disk.mf").write_text(f"SHA256(disk.ovf)= {ovf_digest}\nSHA256(disk.vmdk)= {vmdk_digest}\n",
                                   encoding="utf-8")


def _size_and_digest(path: Path) -> tuple[int, str]:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
        return os.fstat(handle.fileno()).st_size, digest.hexdigest()


OVF_TEMPLATE = """\
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"
    xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
    xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
    xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
    xmlns:vbox="http://www.virtualbox.org/ovf/machine"
    xmlns:vmw="http://www.vmware.com/schema/ovf">
  <References>
    <File ovf:id="file1" ovf:href="disk.vmdk" ovf:size="{vmdk_size}"/>
  </References>
  <DiskSection>
    <Info>Virtual disks</Info>
    <Disk ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:capacity="{capacity}"
        ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>Logical networks</Info>
    <Network ovf:name="NAT"><Description>The network of the machine</Description></Network>
  </NetworkSection>
  <VirtualSystem ovf:id={name}>
    <Info>A bootc image made by deb-mock</Info>
    <Name>{name_text}</Name>
    <OperatingSystemSection ovf:id="96">
      <Info>The guest operating system</Info>
      <Description>Debian (64-bit)</Description>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware: UEFI firmware, {cpus} CPUs, {memory} MiB, one SATA disk</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>{name_text}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>virtualbox-2.2 vmx-14</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:Caption>{cpus} virtual CPUs</rasd:Caption>
        <rasd:ElementName>{cpus} virtual CPUs</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>{cpus}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>MegaBytes</rasd:AllocationUnits>
        <rasd:Caption>{memory} MiB of memory</rasd:Caption>
        <rasd:ElementName>{memory} MiB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>{memory}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Caption>SATA controller</rasd:Caption>
        <rasd:ElementName>SATA controller</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>AHCI</rasd:ResourceSubType>
        <rasd:ResourceType>20</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:Caption>disk1</rasd:Caption>
        <rasd:ElementName>disk1</rasd:ElementName>
        <rasd:HostResource>/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Caption>Ethernet adapter on NAT</rasd:Caption>
        <rasd:Connection>NAT</rasd:Connection>
        <rasd:ElementName>Ethernet adapter on NAT</rasd:ElementName>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:ResourceSubType>E1000</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>
    </VirtualHardwareSection>
    <vbox:Machine ovf:required="false" version="1.16" name={name}>
      <ovf:Info>VirtualBox's settings: UEFI firmware</ovf:Info>
      <Hardware><Firmware type="EFI"/></Hardware>
    </vbox:Machine>
  </VirtualSystem>
</Envelope>
"""
