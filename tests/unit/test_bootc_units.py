"""The bootc plugin's pure parts: sizes, ids, partition table, OCI layout, transforms, fingerprints.

The integration tests (tests/integration/test_bootc.py) prove the same
facts on a real image that boots.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest
from deb_mock.plugins.bootc import boot_tools, disk, formats, oci, qemu, transforms
from deb_mock.plugins.bootc.image_layers import digest_of, newest_changelog, tree_fingerprint
from deb_mock.plugins.bootc.intree import InTree
from deb_mock.plugins.bootc.settings import Settings

from deb_mock.errors import ConfigError, UsageError

GIB = 1 << 30


def test_parse_size_and_errors_name_the_key() -> None:
    assert disk.parse_size("8G", "k") == 8 * GIB
    assert disk.parse_size("512m", "k") == 512 << 20
    assert disk.parse_size("4096", "k") == 4096
    with pytest.raises(ConfigError, match=r"plugins\.bootc\.disk_size '8 gigs'"):
        disk.parse_size("8 gigs", "plugins.bootc.disk_size")


def test_geometry_auto_leaves_room_and_too_small_says_how_big() -> None:
    needed = 900 << 20
    auto = disk.Geometry.plan("auto", "128M", needed)
    assert auto.total == 4 * GIB and auto.root == auto.total - 2 * disk.MIB - (128 << 20)
    assert auto.root_start == disk.MIB + (128 << 20)
    big = disk.Geometry.plan("auto", "128M", 3 * GIB)
    assert big.total >= 7 * GIB and big.total % GIB == 0
    with pytest.raises(ConfigError, match=r"disk size 1G is too small .* needs at least 1\.\dG"):
        disk.Geometry.plan("1G", "128M", needed)
    with pytest.raises(ConfigError, match="at least 64M"):
        disk.Geometry.plan("8G", "16M", needed)


def test_ids_derive_from_the_seed() -> None:
    one, same, other = disk.DiskIds.derive("a"), disk.DiskIds.derive("a"), disk.DiskIds.derive("b")
    assert one == same and one != other
    assert len({one.disk, one.esp_part, one.root_part, one.root_fs}) == 4
    assert len(one.esp_volume) == 8 and int(one.esp_volume, 16) >= 0


def test_sfdisk_script_has_fixed_ids_and_discoverable_types() -> None:
    geometry = disk.Geometry.plan("4G", "128M", 1 << 30)
    ids = disk.DiskIds.derive("x")
    script = disk.sfdisk_script(geometry, ids, "amd64")
    assert f"label-id: {ids.disk.upper()}" in script
    assert f"start=2048, size={(128 << 20) // 512}, type={disk.ESP_TYPE}, uuid={ids.esp_part.upper()}" in script
    assert "type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709" in script and 'name="root"' in script
    root_sectors = geometry.root // 512
    assert f"size={root_sectors}," in script
    assert (2048 + (128 << 20) // 512 + root_sectors) * 512 + disk.MIB == geometry.total


def test_grub_stub_reads_ostrees_syslinux_config() -> None:
    ids = disk.DiskIds.derive("x")
    stub = disk.grub_stub(ids, "/", "amd64")
    assert f"search --no-floppy --fs-uuid --set=root {ids.root_fs}" in stub
    assert "syslinux_configfile -r / /boot/syslinux/syslinux.cfg" in stub
    assert "serial --unit=0" in stub and "terminal_output serial console" in stub
    arm = disk.grub_stub(ids, "/", "arm64")  # arm64-efi GRUB has no serial terminal: UEFI's console is the UART
    assert "serial" not in arm and f"--set=root {ids.root_fs}" in arm
    assert disk.syslinux_root_for("LABEL x\n\tKERNEL /boot/ostree/a/vmlinuz\n") == "/"
    assert disk.syslinux_root_for("LABEL x\n  KERNEL /ostree/a/vmlinuz\n") == "/boot"
    with pytest.raises(Exception, match="no KERNEL line"):
        disk.syslinux_root_for("PROMPT 0\n")


def test_kernel_args_and_output_formats() -> None:
    ids = disk.DiskIds.derive("x")
    assert disk.kernel_args(("quiet",), ids) == [f"root=UUID={ids.root_fs}", "rw", "systemd.gpt_auto=0", "quiet"]
    assert formats.format_for(Path("a.qcow2")).qemu == "qcow2"
    assert formats.format_for(Path("a.IMG")).qemu == "raw"
    assert formats.format_for(Path("a.vmdk")) == formats.Format("vmdk", "vmdk")
    assert formats.format_for(Path("a.vhd")) == formats.Format("vhd", "vpc", ("subformat=fixed", "force_size=on"))
    assert formats.format_for(Path("gce.tar.gz")).package == "gce"
    assert formats.format_for(Path("x.ova")).options == ("subformat=streamOptimized",)
    with pytest.raises(UsageError, match=r"\.tar\.gz, \.qcow2"):
        formats.format_for(Path("a.iso"))
    with pytest.raises(UsageError):
        formats.format_for(Path("a.gz"))


def test_the_ova_descriptor_names_the_disk_its_size_and_uefi(tmp_path: Path) -> None:
    (tmp_path / "disk.vmdk").write_bytes(b"vmdk" * 100)
    formats.write_ova_descriptor(tmp_path, name="a <b>", capacity=4 << 30, cpus=2, memory_mib=2048)
    root = ElementTree.parse(tmp_path / "disk.ovf").getroot()
    ns = {"ovf": "http://schemas.dmtf.org/ovf/envelope/1"}
    file = root.find("ovf:References/ovf:File", ns)
    disk_entry = root.find("ovf:DiskSection/ovf:Disk", ns)
    assert file is not None and file.get(f"{{{ns['ovf']}}}size") == "400"
    assert disk_entry is not None and disk_entry.get(f"{{{ns['ovf']}}}capacity") == str(4 << 30)
    text = (tmp_path / "disk.ovf").read_text()
    assert 'Firmware type="EFI"' in text and "a &lt;b&gt;" in text
    manifest = (tmp_path / "disk.mf").read_text().splitlines()
    assert manifest[1] == f"SHA256(disk.vmdk)= {hashlib.sha256(b'vmdk' * 100).hexdigest()}"


@pytest.mark.parametrize(("text", "transport", "path", "tag"), [
    ("oci:img", "oci", "img", "latest"),
    ("oci:/x/img:v1", "oci", "/x/img", "v1"),
    ("oci-archive:img.tar", "oci-archive", "img.tar", "latest"),
    ("oci-archive:out/img.tar:2", "oci-archive", "out/img.tar", "2"),
])
def test_oci_destinations(text: str, transport: str, path: str, tag: str) -> None:
    dest = oci.Destination.parse(text, "latest")
    assert (dest.transport, dest.path, dest.tag) == (transport, Path(path).absolute(), tag)


@pytest.mark.parametrize("text", ["docker://x/y", "oci:", "img", "dir:x"])
def test_bad_oci_destinations(text: str) -> None:
    with pytest.raises(UsageError, match="oci:DIR"):
        oci.Destination.parse(text, "latest")


def test_oci_tar_command_is_reproducible_and_maps_usr_etc() -> None:
    argv = oci.tar_command("/t", "/o/layer.tar", 1700000000, ["bin", "usr"])
    for flag in ("--sort=name", "--numeric-owner", "--mtime=@1700000000", "--clamp-mtime", "--format=pax",
                 "--xattrs"):
        assert flag in argv
    assert any("delete=atime,delete=ctime" in a for a in argv)
    assert "--transform=s,^usr/etc/,etc/,S" in argv
    assert argv[-3:] == ["--", "bin", "usr"]


def test_oci_layout_is_consistent(tmp_path: Path) -> None:
    layer = tmp_path / "layer.tar.gz"
    layer.write_bytes(b"compressed layer")
    layout = tmp_path / "layout"
    digest = oci.write_layout(layout, layer, "ab" * 32, "gzip", arch="amd64", epoch=1700000000,
                              labels={"containers.bootc": "1"}, tag="v1")
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "v1"
    manifest_blob = (layout / "blobs/sha256" / digest.removeprefix("sha256:")).read_bytes()
    assert hashlib.sha256(manifest_blob).hexdigest() == digest.removeprefix("sha256:")
    manifest = json.loads(manifest_blob)
    assert manifest["layers"][0]["mediaType"].endswith("tar+gzip")
    layer_digest = manifest["layers"][0]["digest"].removeprefix("sha256:")
    assert hashlib.sha256(b"compressed layer").hexdigest() == layer_digest
    config = json.loads((layout / "blobs/sha256" / manifest["config"]["digest"].removeprefix("sha256:")).read_text())
    assert config["rootfs"]["diff_ids"] == ["sha256:" + "ab" * 32]
    assert config["config"]["Labels"] == {"containers.bootc": "1"}
    assert config["created"] == "2023-11-14T22:13:20Z"
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}


def _fake_image(tree: Path) -> None:
    for directory in ("boot", "usr/lib/modules/6.1-amd64", "etc/ssh", "home/alice", "root", "opt/x", "srv",
                      "mnt", "usr/local/bin", "var/log/apt", "var/lib/apt/lists", "dev", "proc", "tmp", "media"):
        (tree / directory).mkdir(parents=True, exist_ok=True)
    (tree / "usr/lib/modules/6.1-amd64/modules.dep").write_text("")
    (tree / "usr/lib/modules/6.1-amd64/initramfs.img").write_text("initramfs")
    (tree / "boot/vmlinuz-6.1-amd64").write_text("kernel")
    (tree / "boot/initrd.img-6.1-amd64").write_text("old initrd")
    (tree / "vmlinuz").symlink_to("boot/vmlinuz-6.1-amd64")
    (tree / "etc/machine-id").write_text("0123456789abcdef\n")
    (tree / "etc/shadow").write_text("root:*:20000:0:99999:7:::\nalice:$6$x$y:20412:0:99999:7:::\n")
    (tree / "etc/passwd-").write_text("backup")
    (tree / "etc/ssh/ssh_host_ed25519_key").write_text("secret")
    (tree / "home/alice/.profile").write_text("profile")
    (tree / "root/.bashrc").write_text("bashrc")
    (tree / "var/log/dpkg.log").write_text("2026-11-23 install")
    (tree / "var/lib/apt/lists/x_Packages").write_text("lists")
    (tree / "tmp/junk").write_text("junk")
    os.mkfifo(tree / "var/fifo")
    (tree / "usr/sbin").mkdir(parents=True)
    (tree / "usr/sbin/sshd").write_text("")


def test_transforms_give_ostrees_layout(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    _fake_image(tree)
    assert transforms.kernel_versions(tree) == ["6.1-amd64"]
    transforms.apply_all(tree, "6.1-amd64", 86400 * 20500)
    assert (tree / "usr/lib/modules/6.1-amd64/vmlinuz").read_text() == "kernel"
    assert list((tree / "boot").iterdir()) == [] and not (tree / "vmlinuz").is_symlink()
    assert not (tree / "etc").exists() and (tree / "usr/etc/machine-id").read_text() == ""
    assert (tree / "usr/etc/shadow").read_text().splitlines()[1].split(":")[2] == "20500"
    assert not (tree / "usr/etc/passwd-").exists() and not (tree / "usr/etc/ssh/ssh_host_ed25519_key").exists()
    assert (tree / "usr/etc/systemd/system/ssh.service.d/deb-mock-hostkeys.conf").is_file()
    getty = (tree / "usr/etc/systemd/system/serial-getty@.service.d/deb-mock-at-once.conf").read_text()
    assert "[Service]\nType=simple\n" in getty
    assert "PARTLABEL=esp /efi vfat" in (tree / "usr/etc/fstab").read_text()
    assert os.readlink(tree / "home") == "var/home" and os.readlink(tree / "usr/local") == "../var/usrlocal"
    assert os.readlink(tree / "root") == "var/roothome" and os.readlink(tree / "media") == "run/media"
    assert (tree / "var/home/alice/.profile").read_text() == "profile"
    assert (tree / "var/roothome/.bashrc").read_text() == "bashrc"
    assert os.readlink(tree / "ostree") == "sysroot/ostree" and (tree / "sysroot").is_dir()
    assert (tree / "efi").is_dir()
    assert not (tree / "var/log/dpkg.log").exists() and not list((tree / "var/lib/apt/lists").iterdir())
    assert not (tree / "var/fifo").exists() and not (tree / "tmp/junk").exists()
    assert "d /var/home 0755" in (tree / "usr/lib/tmpfiles.d/deb-mock-ostree.conf").read_text()
    kinds = {stat.S_IFMT(os.lstat(os.path.join(d, f)).st_mode) for d, _, fs in os.walk(tree) for f in fs}
    assert kinds <= {stat.S_IFREG, stat.S_IFLNK}
    assert {n: stat.S_IMODE((tree / n).stat().st_mode) for n in ("proc", "sys", "tmp", "dev", "run")} == {
        "proc": 0o555, "sys": 0o555, "tmp": 0o1777, "dev": 0o755, "run": 0o755}


def test_transforms_refuse_a_tree_without_its_kernel(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    _fake_image(tree)
    (tree / "boot/vmlinuz-6.1-amd64").unlink()
    with pytest.raises(FileNotFoundError, match=r"kernel image for 6\.1-amd64"):
        transforms.apply_all(tree, "6.1-amd64", 1)


def test_fingerprints_see_changes_and_digests_are_stable(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a/f").write_text("1")
    before = tree_fingerprint(tmp_path)
    assert tree_fingerprint(tmp_path) == before
    (tmp_path / "a/g").write_text("2")
    assert tree_fingerprint(tmp_path) != before
    assert tree_fingerprint(tmp_path / "missing") == "absent"
    assert digest_of("x", [1, 2]) == digest_of("x", [1, 2]) != digest_of("x", [2, 1])


def test_newest_changelog_is_the_source_date_epoch(tmp_path: Path) -> None:
    for layer, name, mtime in (("upper", "a", 1_700_000_000), ("lower", "b", 1_600_000_000)):
        path = tmp_path / layer / "usr/share/doc" / name / "changelog.Debian.gz"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"")
        os.utime(path, (mtime, mtime))
    assert newest_changelog([str(tmp_path / "upper"), str(tmp_path / "lower")]) == 1_700_000_000
    assert newest_changelog([str(tmp_path / "none")]) == 0


def test_qemu_command_boots_uefi_without_network(tmp_path: Path) -> None:
    files = qemu.BootFiles("/code.fd", str(tmp_path / "vars.fd"), str(tmp_path / "o.qcow2"), (str(tmp_path / "u.img"),))
    bare = dataclasses.replace(files, drives=())
    amd64, arm64 = qemu.MACHINES["amd64"], qemu.MACHINES["arm64"]
    argv = qemu.qemu_command(amd64, files, accel="tcg", memory="2048", cpus=0, qemu_version=7)
    joined = " ".join(argv)
    assert argv[0] == "qemu-system-x86_64" and "-machine q35," in joined
    # a board without the devices such a guest never uses (each costs firmware and kernel time under TCG)
    assert all(f"{device}=off" in joined for device in ("smm", "sata", "smbus", "i8042", "vmport"))
    assert "-nic none" in joined and "-serial stdio" in joined
    # under TCG a model cheap to emulate; qemu 7.2 runs one thread and so one vCPU, qemu 10 a thread for each of two
    assert "-cpu qemu64,-svm" in joined and "-accel tcg,thread=single" in joined and "-smp 1" in joined
    newer = " ".join(qemu.qemu_command(amd64, bare, accel="tcg", memory="2048", cpus=0, qemu_version=10))
    assert "-accel tcg,thread=multi" in newer and "-smp 2" in newer
    unknown = " ".join(qemu.qemu_command(amd64, bare, accel="tcg", memory="2048", cpus=0))
    assert "-accel tcg,thread=single" in unknown and "-smp 1" in unknown
    kvm = " ".join(qemu.qemu_command(amd64, bare, accel="kvm", memory="2048", cpus=0))
    assert "-cpu host -accel kvm" in kvm and "-smp 2" in kvm
    assert "-smp 3" in " ".join(qemu.qemu_command(amd64, bare, accel="tcg", memory="2048", cpus=3))
    assert "if=pflash,format=raw,unit=0,readonly=on,file=/code.fd" in joined
    assert f"if=pflash,format=raw,unit=1,file={tmp_path / 'vars.fd'}" in joined
    assert f"if=virtio,format=raw,readonly=on,file={tmp_path / 'u.img'}" in joined
    arm = " ".join(qemu.qemu_command(arm64, bare, accel="tcg", memory="2048", cpus=0, qemu_version=7))
    assert arm.startswith("qemu-system-aarch64 -machine virt -cpu max,pauth-impdef=on")
    assert "-accel tcg,thread=multi" in arm and "-nic none" in arm and "-smp 2" in arm


def test_the_boot_check_answers_size_queries_as_a_terminal_would() -> None:
    """systemd's two cursor position queries before a getty, whole or split between two reads."""
    query = b"\x1b[!p\x1b[6n\x1b[32766;32766H\x1b[6n"
    assert qemu.terminal_replies(b"", query) == b"\x1b[24;80R" * 2
    assert qemu.terminal_replies(b"...\x1b[6", b"n more") == b"\x1b[24;80R"
    assert qemu.terminal_replies(b"\x1b[6n", b"no query here") == b""
    assert qemu.terminal_replies(b"", b"plain boot output [6n") == b""


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_the_root_partitions_type_names_the_images_architecture(tmp_path: Path, arch: str) -> None:
    """A GPT written by sfdisk, as the disk stage writes it, read back by type code."""
    image = tmp_path / "disk.raw"
    with image.open("wb") as handle:
        handle.truncate(8 * disk.MIB)
    layout = f"label: gpt\nsize=2MiB, type={disk.ESP_TYPE}\ntype={disk.ROOT_TYPE[arch]}\n"
    subprocess.run(["sfdisk", "-q", str(image)], input=layout, text=True, check=True, capture_output=True)
    head = image.read_bytes()[:34 * 512]
    assert qemu.partition_types(head) == {disk.ESP_TYPE, disk.ROOT_TYPE[arch]}
    assert qemu.partition_types(b"\0" * len(head)) == set()


@pytest.mark.parametrize(("root_type", "expected"), [(disk.ROOT_TYPE["arm64"], "arm64"),
                                                     ("0FC63DAF-8483-4772-8E79-3D69D8477DE4", "amd64")])
def test_run_picks_the_machine_from_the_image_or_else_the_host(tmp_path: Path, root_type: str,
                                                               expected: str) -> None:
    """Read through a real qcow2 overlay; a generic Linux root partition boots as the host (amd64 here)."""
    image = tmp_path / "disk.raw"
    with image.open("wb") as handle:
        handle.truncate(8 * disk.MIB)
    subprocess.run(["sfdisk", "-q", str(image)], input=f"label: gpt\ntype={root_type}\n", text=True, check=True,
                   capture_output=True)
    overlay = tmp_path / "overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(image), str(overlay)],
                   check=True)
    assert qemu.image_architecture(image, overlay) == expected


def test_update_stamps_say_usr_is_not_newer_than_etc_and_var(tmp_path: Path) -> None:
    """The disk stage's script over a deployment laid out as ostree does (/usr at time 0)."""
    stateroot = tmp_path / "ostree/deploy/debian"
    deployment = stateroot / "deploy" / f"{'ab' * 32}.0"
    for directory in ("etc", "usr"):
        (deployment / directory).mkdir(parents=True)
    (stateroot / "var").mkdir()
    os.utime(deployment / "usr", (0, 0))
    subprocess.run(["/bin/sh", "-c", disk.UPDATE_STAMPS, "sh", str(stateroot)], check=True)
    for stamp in (deployment / "etc/.updated", stateroot / "var/.updated"):
        assert stamp.read_text().splitlines()[-1] == "TIMESTAMP_NSEC=0", stamp


def test_kernel_args_default_to_the_architectures_serial_console() -> None:
    assert Settings().kernel_args_for("amd64") == ("console=ttyS0,115200",)
    assert Settings().kernel_args_for("arm64") == ("console=ttyAMA0,115200",)
    assert Settings(kernel_args=()).kernel_args_for("arm64") == ()
    assert Settings(kernel_args=("quiet",)).kernel_args_for("amd64") == ("quiet",)


def test_boot_refuses_missing_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such image file"):
        qemu.boot(tmp_path / "nope.qcow2", accel="tcg", memory="1024", cpus=1, drives=[], timeout=1)
    image = tmp_path / "i.qcow2"
    image.write_bytes(b"")
    with pytest.raises(UsageError, match="--bootc-run-drive"):
        qemu.boot(image, accel="tcg", memory="1024", cpus=1, drives=[tmp_path / "nope.img"], timeout=1)


def test_retag_replaces_index_json_without_touching_its_other_links(tmp_path: Path) -> None:
    layer = tmp_path / "layer.tar"
    layer.write_bytes(b"layer")
    layout = tmp_path / "layout"
    digest = oci.write_layout(layout, layer, "cd" * 32, "none", arch="arm64", epoch=1, labels={}, tag="latest")
    link = tmp_path / "index-link.json"
    os.link(layout / "index.json", link)
    oci.retag(layout, "v2")
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "v2"
    assert index["manifests"][0]["digest"] == digest
    assert "latest" in link.read_text()


def test_apt_partial_gets_the_owner_apt_gives_it_whoever_made_the_base(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    _fake_image(tree)
    (tree / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n")
    partial = tree / "var/cache/apt/archives/partial"
    partial.mkdir(parents=True)
    partial.chmod(0o755)
    (partial / "half.deb").write_text("x")
    assert transforms.system_uid(tree, "_apt") == 42 and transforms.system_uid(tree, "nobody") is None
    transforms.apply_all(tree, "6.1-amd64", 1)
    info = partial.stat()
    assert list(partial.iterdir()) == [] and stat.S_IMODE(info.st_mode) == 0o700
    if os.geteuid() == 0:
        assert (info.st_uid, info.st_gid) == (42, 0)


def test_transforms_never_act_through_links_to_the_host(tmp_path: Path) -> None:
    """Links a package ships (absolute, or climbing with ..) resolve inside the tree, as on the image."""
    host = tmp_path / "host"
    (host / "victim").mkdir(parents=True)
    (host / "victim/ssh_host_rsa_key").write_text("host key")
    (host / "shadow").write_text("root:x:1:0:99999:7:::\n")
    (host / "home/alice").mkdir(parents=True)
    (host / "home/alice/file").write_text("alice's")
    before = {p: p.read_bytes() for p in host.rglob("*") if p.is_file()}
    tree = tmp_path / "tree"
    _fake_image(tree)
    for path in (tree / "etc/ssh/ssh_host_ed25519_key",):
        path.unlink()
    (tree / "etc/ssh").rmdir()
    (tree / "etc/ssh").symlink_to(host / "victim")               # absolute: /tmp/.../host/victim
    (tree / "etc/shadow").unlink()
    (tree / "etc/shadow").symlink_to("../" * 12 + str(host / "shadow").lstrip("/"))  # climbs with ..
    (tree / "var/home").symlink_to(host / "home")
    transforms.apply_all(tree, "6.1-amd64", 86400)
    after = {p: p.read_bytes() for p in host.rglob("*") if p.is_file()}
    assert after == before
    assert os.readlink(tree / "home") == "var/home"


def test_a_cloud_image_gets_cloud_inits_settings_and_networkd(tmp_path: Path) -> None:
    (tmp_path / "etc/cloud").mkdir(parents=True)
    with InTree(tmp_path) as image:
        transforms.cloud_image(image)
    assert "renderers: [networkd]" in (tmp_path / "etc/cloud/cloud.cfg.d/90-deb-mock.cfg").read_text()
    assert "DHCP=yes" in (tmp_path / "etc/systemd/network/80-deb-mock-dhcp.network").read_text()
    wants = tmp_path / "etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
    assert os.readlink(wants) == "/usr/lib/systemd/system/systemd-networkd.service"
    assert not (tmp_path / "etc/systemd/system/network-online.target.wants").exists()  # no wait for a network
    bare = tmp_path / "bare"
    bare.mkdir()
    with InTree(bare) as image, pytest.raises(FileNotFoundError, match="cloud-init"):
        transforms.cloud_image(image)


def test_the_boot_tools_version_decides_tcg_threads() -> None:
    """The tree records its emulator's major version: trixie's qemu 10 runs a thread per vCPU, bookworm's 7.2 one."""
    assert boot_tools.major_version("1:10.0.13+ds-0+deb13u1") == 10
    assert boot_tools.major_version("1:7.2+dfsg-7+deb12u18") == 7
    assert boot_tools.major_version("9.2.0-1") == 9
    assert boot_tools.major_version("") == 0 and boot_tools.major_version("1:git20240101") == 0
    assert qemu.MACHINES["amd64"].tcg_threads(10) == "multi" and qemu.MACHINES["amd64"].tcg_threads(7) == "single"


def test_the_boot_tools_sweep_deletes_only_dead_bootstraps(tmp_path: Path) -> None:
    """A bootstrap killed with its run leaves .<key>.<pid>.tmp: deleted once its pid is gone, never a live one's."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    finished = tmp_path / "c6cce5774309c9f3bfd4dfd7"
    stale = tmp_path / f".c6cce5774309c9f3bfd4dfd7.{dead.pid}.tmp"
    live = tmp_path / f".c6cce5774309c9f3bfd4dfd7.{os.getpid()}.tmp"
    for directory in (finished, stale, live):
        (directory / "usr/bin").mkdir(parents=True)
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / f".link.{dead.pid}.tmp").symlink_to(target)
    boot_tools._sweep(tmp_path)
    assert finished.is_dir() and live.is_dir() and not stale.exists()
    assert target.is_dir() and (tmp_path / f".link.{dead.pid}.tmp").is_symlink()


def test_the_boot_tools_key_follows_release_archive_and_machine() -> None:
    from deb_mock.config.schema import Config

    base = Config(suite="trixie", architecture="amd64")
    key = boot_tools.tree_key(base, qemu.MACHINES["amd64"])
    assert key == boot_tools.tree_key(dataclasses.replace(base, packages=("hello",)), qemu.MACHINES["amd64"])
    assert key != boot_tools.tree_key(dataclasses.replace(base, suite="forky"), qemu.MACHINES["amd64"])
    assert key != boot_tools.tree_key(dataclasses.replace(base, mirror="http://127.0.0.1/debian"),
                                      qemu.MACHINES["amd64"])
    assert key != boot_tools.tree_key(base, qemu.MACHINES["arm64"])


def _tree(path: Path, version: str) -> Path:
    (path / "usr/bin").mkdir(parents=True)
    (path / boot_tools.INFO).write_text(f"{version}\n")
    return path


def test_a_renewed_tools_tree_replaces_the_old_one_which_goes_once_no_boot_holds_it(tmp_path: Path) -> None:
    """Renewal (qemu_tools_max_age_days): the new tree takes the name in one exchange; the old one is kept
    while a boot holds its mark (a shared flock, as a running --bootc-run does) and deleted by the next sweep."""
    tree = _tree(tmp_path / "c6cce5774309c9f3bfd4dfd7", "7")
    held = boot_tools._hold(tree)  # a boot running from the old tree
    boot_tools.put_in_place(_tree(tmp_path / ".c6cce5774309c9f3bfd4dfd7.1.tmp", "10"), tree, renew=True)
    assert (tree / boot_tools.INFO).read_text() == "10\n"
    aside = tmp_path / f".c6cce5774309c9f3bfd4dfd7.{os.getpid()}.old"
    assert (aside / boot_tools.INFO).read_text() == "7\n"  # still there: the boot holds it
    os.close(held)
    boot_tools._sweep(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [tree.name]
    # nothing held: the old tree goes at once
    boot_tools.put_in_place(_tree(tmp_path / ".c6cce5774309c9f3bfd4dfd7.2.tmp", "11"), tree, renew=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [tree.name]
    assert (tree / boot_tools.INFO).read_text() == "11\n"


def test_a_boot_holds_the_tree_it_found_and_a_lost_race_keeps_the_finished_tree(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "key", "10")
    held = boot_tools._hold(tree)
    other = os.open(tree / boot_tools.INFO, os.O_RDONLY)
    with pytest.raises(BlockingIOError):  # a renewal's sweep cannot take it
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(other)
    assert boot_tools._held(tree)
    os.close(held)
    assert not boot_tools._held(tree)
    # a first bootstrap that lost the race to another run's: the finished tree stays, the work goes with its run
    late = _tree(tmp_path / ".key.3.tmp", "10")
    boot_tools.put_in_place(late, tree, renew=False)
    assert (tree / boot_tools.INFO).read_text() == "10\n" and late.is_dir()
