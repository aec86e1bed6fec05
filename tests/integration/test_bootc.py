"""The bootc plugin for real: a trixie root → OSTree commit → OCI image → disk → boot, upgrade, rollback.

One root (trixie-amd64 with --uniqueext bootc, restored from the session's
root cache) with `tree` added; the image has a root password and a user with
an SSH key. Boots use qemu under TCG with no network; updates come from the
OSTree repository attached as a read-only ext4 disk.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import DebMock
from tests.integration.serial import SerialConsole

pytestmark = [pytest.mark.root, pytest.mark.network, pytest.mark.slow]
REF = "debian/trixie/amd64"
ROOT_PASSWORD = "deb-mock-root"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH5Yf0x7q3cOeZb4vVxq5m6bq0bq5m6bq0bq5m6bq0bq alice@example"
CONFIG = f"""\
templates: [trixie-amd64]
name: trixie-amd64
plugins:
  bootc:
    hostname: dm-image
    root_password: {ROOT_PASSWORD}
    users:
      - {{name: alice, groups: [sudo], password: alice-pw, ssh_keys: ["{SSH_KEY}"]}}
"""


class Image:
    """What the module fixture built, and how to run deb-mock on its root."""

    def __init__(self, dm: DebMock, top: Path) -> None:
        self.dm = dm
        self.top = top
        self.config = top / "bootc.yaml"
        self.config.write_text(CONFIG)
        self.results: dict[str, dict[str, object]] = {}

    def args(self, *more: str) -> tuple[str, ...]:
        return ("-r", str(self.config), "--uniqueext", "bootc", *more)

    def json(self, *more: str) -> dict[str, object]:
        result = self.dm.json(*self.args(*more))
        assert result["exit_code"] == 0, result
        return result

    def bootc(self, name: str) -> dict[str, object]:
        report = self.results[name]["bootc"]
        assert isinstance(report, dict)
        return report


def sbin(tool: str) -> str:
    """A tool from /usr/sbin, whatever the caller's PATH (mkfs.ext4, sfdisk)."""
    found = shutil.which(tool, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    assert found, f"{tool} is not installed (.ci/install installs it)"
    return found


def ostree(*args: str) -> str:
    result = subprocess.run(["ostree", *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"ostree {' '.join(args)}: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def image(dm: DebMock, trixie: dict[str, object]) -> Image:
    top = dm.basedir.parent / "bootc"
    top.mkdir()
    built = Image(dm, top)
    built.json("--install", "tree")
    built.results["commit"] = built.json("--bootc-commit", str(top / "repo"))
    built.results["container"] = built.json("--bootc-container", f"oci:{top / 'oci'}")
    built.results["qcow2"] = built.json("--bootc-image", str(top / "disk.qcow2"))
    built.results["raw"] = built.json("--bootc-image", str(top / "disk.raw"))
    built.results["vmdk"] = built.json("--bootc-image", str(top / "disk.vmdk"))
    built.results["archive"] = built.json("--bootc-container", f"oci-archive:{top / 'image.tar'}:v1")
    return built


def test_commit_holds_the_root_in_ostrees_layout(image: Image) -> None:
    report = image.bootc("commit")
    commit = str(report["commit"])
    assert re.fullmatch(r"[0-9a-f]{64}", commit)
    repo = str(image.top / "repo")
    assert ostree(f"--repo={repo}", "rev-parse", REF).strip() == commit
    log = ostree(f"--repo={repo}", "log", REF)
    assert f"commit {commit}" in log and "Parent:" not in log
    kver = ostree(f"--repo={repo}", "ls", commit, "/usr/lib/modules").split()[-1].rsplit("/", 1)[-1]
    listing = ostree(f"--repo={repo}", "ls", "-R", commit, f"/usr/lib/modules/{kver}")
    assert f"/usr/lib/modules/{kver}/vmlinuz" in listing and f"/usr/lib/modules/{kver}/initramfs.img" in listing
    assert "/usr/bin/tree" in ostree(f"--repo={repo}", "ls", commit, "/usr/bin/tree")
    assert ostree(f"--repo={repo}", "cat", commit, "/usr/etc/hostname").strip() == "dm-image"
    assert ostree(f"--repo={repo}", "cat", commit, "/usr/etc/machine-id") == ""
    assert "alice" in ostree(f"--repo={repo}", "cat", commit, "/usr/etc/passwd")
    top = ostree(f"--repo={repo}", "ls", commit, "/")
    assert re.search(r"home -> var/home", top) and re.search(r"ostree -> sysroot/ostree", top)
    assert not re.search(r" /etc$", top, re.M)
    assert ostree(f"--repo={repo}", "ls", commit, "/boot").strip().endswith("/boot")  # empty
    keys = ostree(f"--repo={repo}", "cat", commit, "/var/home/alice/.ssh/authorized_keys")
    assert keys.strip() == SSH_KEY
    result = json.loads((image.dm.root_dir("trixie-amd64-bootc") / "result" / "result.json").read_text())
    # the fixture's last run wrote the oci-archive: its result.json names the same commit
    assert result["mode"] == "bootc_container" and result["bootc"]["commit"] == commit


def test_the_build_root_itself_is_unchanged(image: Image) -> None:
    result = image.dm.run(*image.args("--chroot", "dpkg -s linux-image-amd64 ostree 2>&1; ls /usr/lib/modules"))
    assert result.returncode != 0, "the boot packages must not be in the root"
    assert "is not installed" in result.stdout
    assert image.dm.run(*image.args("--chroot", "dpkg -s tree >/dev/null")).returncode == 0


def test_oci_image_is_a_bootc_image_skopeo_reads(image: Image) -> None:
    report = image.bootc("container")
    layout = image.top / "oci"
    inspect = json.loads(subprocess.run(["skopeo", "inspect", f"oci:{layout}:latest"], capture_output=True,
                                        text=True, check=True).stdout)
    labels = inspect["Labels"]
    assert labels["containers.bootc"] == "1" and labels["ostree.bootable"] == "1"
    assert labels["ostree.linux"].endswith("-amd64") and labels["ostree.commit"] == report["commit"]
    assert inspect["Digest"] == report["manifest_digest"]
    layer = layout / "blobs" / "sha256" / inspect["Layers"][0].removeprefix("sha256:")
    with tarfile.open(layer, "r:gz") as archive:
        members = {m.name: m for m in archive.getmembers()}
    assert "usr/bin/tree" in members and "etc/hostname" in members and "usr/etc/hostname" not in members
    epoch = int(labels["org.opencontainers.image.version"].rsplit(".", 1)[-1])
    assert members["usr/bin/tree"].uid == 0 and max(m.mtime for m in members.values()) <= epoch
    archive = json.loads(subprocess.run(["skopeo", "inspect", f"oci-archive:{image.top / 'image.tar'}:v1"],
                                        capture_output=True, text=True, check=True).stdout)
    assert archive["Labels"] == labels and archive["Layers"] == inspect["Layers"]
    artifact = image.results["archive"]["artifacts"][0]  # type: ignore[index]
    assert artifact["path"] == str(image.top / "image.tar")
    copied = image.top / "oci-copy"
    subprocess.run(["skopeo", "copy", "--quiet", f"oci:{layout}:latest", f"oci:{copied}:copy"], check=True)
    assert (copied / "index.json").is_file()


def test_the_oci_image_goes_to_a_registry(image: Image, registry: tuple[str, Path]) -> None:
    """--bootc-container docker://: the very image of the layout, pushed by skopeo (digests preserved)."""
    host = registry[0].removeprefix("oci://").split("/", 1)[0]
    reference = f"docker://{host}/deb-mock/image:v1"
    pushed = image.json("--bootc-container", reference)
    assert pushed["bootc"]["manifest_digest"] == image.bootc("container")["manifest_digest"], pushed  # type: ignore[index]
    inspect = json.loads(subprocess.run(["skopeo", "inspect", "--tls-verify=false", reference], capture_output=True,
                                        text=True, check=True).stdout)
    assert inspect["Digest"] == image.bootc("container")["manifest_digest"]
    assert inspect["Labels"]["containers.bootc"] == "1"
    bad = image.dm.json(*image.args("--bootc-container", "docker://127.0.0.1:1/Upper"))
    assert bad["exit_code"] == 5 and "docker://HOST" in str(bad["error"]), bad


def test_disk_has_an_esp_and_an_ext4_root_with_fixed_ids(image: Image) -> None:
    raw = image.top / "disk.raw"
    dump = subprocess.run([sbin("sfdisk"), "--dump", str(raw)], capture_output=True, text=True, check=True).stdout
    assert "label: gpt" in dump
    assert re.search(r"type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B.*name=\"esp\"", dump)
    assert re.search(r"type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709.*name=\"root\"", dump)
    report = image.bootc("raw")
    assert report["raw_sha256"] == image.results["raw"]["artifacts"][0]["sha256"]  # type: ignore[index]
    assert report["format"] == "raw" and image.bootc("qcow2")["format"] == "qcow2"
    info = subprocess.run(["qemu-img", "info", "--output=json", str(image.top / "disk.qcow2")], capture_output=True,
                          text=True, check=True).stdout
    assert json.loads(info)["format"] == "qcow2"
    vmdk = subprocess.run(["qemu-img", "info", "--output=json", str(image.top / "disk.vmdk")], capture_output=True,
                          text=True, check=True).stdout
    assert json.loads(vmdk)["format"] == "vmdk" and image.bootc("vmdk")["raw_sha256"] == report["raw_sha256"]
    # the raw disk was converted from the cached deployment: no stage but the conversion ran again
    durations = image.results["raw"]["durations"]
    assert isinstance(durations, dict) and set(durations) == {"bootc-convert"}, durations


def test_cloud_formats_are_what_their_importers_read(image: Image, tmp_path: Path) -> None:
    """.vdi, a fixed .vhd (whole MiB, for Azure), .vhdx, GCE's .tar.gz and an .ova: conversions of the cached disk."""
    size = (image.top / "disk.raw").stat().st_size
    raw_sha256 = image.bootc("raw")["raw_sha256"]
    for name, fmt in (("disk.vdi", "vdi"), ("disk.vhd", "vpc"), ("disk.vhdx", "vhdx")):
        result = image.json("--bootc-image", str(image.top / name))
        assert result["bootc"]["raw_sha256"] == raw_sha256, result  # type: ignore[index]
        probe = ["-f", "vpc"] if fmt == "vpc" else []  # qemu-img takes a fixed VHD for raw unless told
        info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", *probe, str(image.top / name)],
                                         capture_output=True, text=True, check=True).stdout)
        assert info["format"] == fmt and info["virtual-size"] == size, info
    assert size % (1 << 20) == 0 and (image.top / "disk.vhd").stat().st_size == size + 512  # fixed: data + footer
    gce = image.json("--bootc-image", str(image.top / "gce.tar.gz"))
    assert gce["bootc"]["format"] == "gce", gce  # type: ignore[index]
    with tarfile.open(image.top / "gce.tar.gz") as archive:
        assert [(m.name, m.size) for m in archive.getmembers()] == [("disk.raw", size)]
    assert image.json("--bootc-image", str(image.top / "disk.ova"))["exit_code"] == 0
    with tarfile.open(image.top / "disk.ova") as archive:
        assert archive.getnames() == ["disk.ovf", "disk.vmdk", "disk.mf"]  # the descriptor first, as OVF asks
        for member in archive.getmembers():
            extracted = archive.extractfile(member)
            assert member.isfile() and extracted is not None, member
            (tmp_path / member.name).write_bytes(extracted.read())
    for line in (tmp_path / "disk.mf").read_text().splitlines():
        member, digest = re.fullmatch(r"SHA256\((.+)\)= ([0-9a-f]{64})", line).groups()  # type: ignore[union-attr]
        assert hashlib.sha256((tmp_path / member).read_bytes()).hexdigest() == digest, member
    vmdk = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(tmp_path / "disk.vmdk")],
                                     capture_output=True, text=True, check=True).stdout)
    assert vmdk["format"] == "vmdk" and vmdk["virtual-size"] == size
    assert vmdk["format-specific"]["data"]["create-type"] == "streamOptimized", vmdk
    assert f'ovf:capacity="{size}"' in (tmp_path / "disk.ovf").read_text()


def test_bad_output_and_sizes_are_clear_errors(image: Image, tmp_path: Path) -> None:
    small = image.dm.run(*image.args("--bootc-image", str(tmp_path / "small.raw"), "--bootc-image-size", "600M"))
    assert small.returncode == 3 and "too small" in small.stderr and "needs at least" in small.stderr, small.stderr
    assert not list(tmp_path.iterdir())
    missing = image.dm.run(*image.args("--bootc-image", str(tmp_path / "no/such/dir/x.qcow2")))
    assert missing.returncode == 70 and "does not exist" in missing.stderr
    wrong = image.dm.run(*image.args("--bootc-image", str(tmp_path / "x.iso")))
    assert wrong.returncode == 5 and ".qcow2" in wrong.stderr
    dest = image.dm.run(*image.args("--bootc-container", "ftp:x"))
    assert dest.returncode == 5 and "oci:DIR" in dest.stderr
    hub = image.dm.run(*image.args("--bootc-container", "docker://example/x"))  # no registry named: not Docker Hub
    assert hub.returncode == 5 and "HOST with a dot" in hub.stderr
    # qemu-img reads the image's partition table (which machine boots it), so it is the first tool needed
    no_tools = subprocess.run([*image.dm.command("--bootc-run", str(image.top / "disk.qcow2"))],
                              env={**image.dm.env, "PATH": "/nonexistent"}, capture_output=True, text=True)
    assert no_tools.returncode == 31 and "apt-get install qemu-utils" in no_tools.stderr, no_tools.stderr
    only_img = tmp_path / "only-qemu-img"
    only_img.mkdir()
    (only_img / "qemu-img").symlink_to(sbin("qemu-img"))
    no_qemu = subprocess.run([*image.dm.command("--bootc-run", str(image.top / "disk.qcow2"), "--config-opts",
                                                "plugins.bootc.qemu_from=host")],
                             env={**image.dm.env, "PATH": str(only_img)}, capture_output=True, text=True)
    assert no_qemu.returncode == 31 and "apt-get install qemu-system-x86" in no_qemu.stderr, no_qemu.stderr
    # qemu from the run's release (the default) is bootstrapped on first use: that needs mmdebstrap
    no_tools_yet = subprocess.run([*image.dm.command("--bootc-run", str(image.top / "disk.qcow2"), "--config-opts",
                                                     f"cache_topdir={tmp_path / 'cache'}")],
                                  env={**image.dm.env, "PATH": str(only_img)}, capture_output=True, text=True)
    assert no_tools_yet.returncode == 31 and "apt-get install mmdebstrap" in no_tools_yet.stderr, \
        no_tools_yet.stderr
    assert not (tmp_path / "cache" / "bootc-tools").exists()
    assert "Traceback" not in small.stderr + missing.stderr + wrong.stderr + dest.stderr + no_tools.stderr \
        + no_qemu.stderr + no_tools_yet.stderr


def test_same_root_gives_the_same_commit_oci_and_disk(image: Image) -> None:
    image.json("--scrub=bootc")
    again_commit = image.json("--bootc-commit", str(image.top / "repo2"))
    again_raw = image.json("--bootc-image", str(image.top / "disk2.raw"))
    again_oci = image.json("--bootc-container", f"oci:{image.top / 'oci2'}")
    assert "bootc-image" in again_commit["durations"]  # type: ignore[operator]  # everything was redone
    assert again_commit["bootc"]["commit"] == image.bootc("commit")["commit"]  # type: ignore[index]
    assert again_oci["bootc"]["manifest_digest"] == image.bootc("container")["manifest_digest"]  # type: ignore[index]
    assert again_raw["artifacts"][0]["sha256"] == image.results["raw"]["artifacts"][0]["sha256"]  # type: ignore[index]


def test_the_image_tree_and_any_tree_are_linted_as_bootc_does(image: Image, tmp_path: Path) -> None:
    """Every image is linted before it is written; --bootc-lint [DIR] prints the findings (exit 3 on errors)."""
    written = image.bootc("qcow2")["lint"]
    assert isinstance(written, list) and not [f for f in written if f["severity"] == "error"], written
    own = image.json("--bootc-lint")
    assert own["bootc"]["lint"] == written  # type: ignore[index]
    tree = tmp_path / "tree"
    for kver in ("6.12.1", "6.12.2"):
        (tree / "usr/lib/modules" / kver).mkdir(parents=True)
        (tree / "usr/lib/modules" / kver / "vmlinuz").write_bytes(b"")
        (tree / "usr/lib/modules" / kver / "initramfs.img").write_bytes(b"")
    (tree / "var/lib").mkdir(parents=True)
    (tree / "var/lib/foo").write_text("state")
    (tree / "boot").mkdir()
    (tree / "boot/stray").write_text("")
    two = image.dm.run(*image.args("--bootc-lint", str(tree)))
    assert two.returncode == 3 and "Traceback" not in two.stderr, two.stderr
    assert [line.split(":")[:2] for line in two.stdout.splitlines()] == [
        ["error", " kernel"], ["warning", " boot"], ["warning", " var"]], two.stdout
    (tree / "usr/lib/modules/6.12.2/vmlinuz").unlink()
    (tree / "usr/lib/modules/6.12.2/initramfs.img").unlink()
    (tree / "usr/lib/modules/6.12.2").rmdir()
    assert image.dm.run(*image.args("--bootc-lint", str(tree))).returncode == 0  # two warnings
    strict = image.dm.json(*image.args("--bootc-lint", str(tree), "--bootc-lint-strict"))
    assert strict["exit_code"] == 3 and "--bootc-lint-strict" in str(strict["error"]), strict


def _blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _add_layer(base: Path, out: Path, files: dict[str, bytes], tag: str) -> None:
    """A derived image, as a Containerfile's RUN makes one: ``base``'s layout plus one gzip layer of ``files``
    (a name ending in ``/`` is a directory; whiteouts are plain empty files named ``.wh.*``)."""
    shutil.copytree(base, out)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mtime = 1700000000
            if name.endswith("/"):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            else:
                info.size, info.mode = len(data), 0o755
                archive.addfile(info, io.BytesIO(data))
    layer = gzip.compress(raw.getvalue(), mtime=0)
    index = json.loads((base / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].removeprefix("sha256:")
    manifest = json.loads((base / "blobs" / "sha256" / manifest_digest).read_bytes())
    config = json.loads((base / "blobs" / "sha256" / manifest["config"]["digest"].removeprefix("sha256:")).read_bytes())
    config["rootfs"]["diff_ids"].append(f"sha256:{hashlib.sha256(raw.getvalue()).hexdigest()}")
    config["history"].append({"created": config["created"], "created_by": "RUN derive"})
    manifest["config"] = {**manifest["config"], **_blob(out, json.dumps(config).encode())}
    manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **_blob(out, layer)})
    entry = {"mediaType": manifest["mediaType"], **_blob(out, json.dumps(manifest).encode()),
             "annotations": {"org.opencontainers.image.ref.name": tag}}
    (out / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))


def test_a_container_image_gives_back_the_roots_commit_and_disk(image: Image) -> None:
    """--bootc-from the root's own OCI image: the same commit, the same raw disk; what is not bootc is refused."""
    layout = f"oci:{image.top / 'oci'}:latest"
    commit = image.json("--bootc-from", layout, "--bootc-commit", str(image.top / "from-repo"))
    assert commit["bootc"]["commit"] == image.bootc("commit")["commit"], commit  # type: ignore[index]
    assert commit["bootc"]["from"]["manifest_digest"] == image.bootc("container")["manifest_digest"]  # type: ignore[index]
    disk = image.json("--bootc-from", layout, "--bootc-image", str(image.top / "from.raw"))
    assert disk["bootc"]["raw_sha256"] == image.bootc("raw")["raw_sha256"]  # type: ignore[index]
    assert "bootc-image" not in disk["durations"]  # type: ignore[operator]  # no boot packages: the image's own
    plain = image.top / "plain"  # an image without a kernel, read as a docker archive
    _add_layer(image.top / "oci", plain, {"usr/lib/modules/": b"", "usr/lib/.wh.modules": b""}, "plain")
    subprocess.run(["skopeo", "copy", "--quiet", f"oci:{plain}:plain", f"docker-archive:{image.top / 'plain.tar'}"],
                   check=True)
    refused = image.dm.json(*image.args("--bootc-from", f"docker-archive:{image.top / 'plain.tar'}",
                                        "--bootc-commit", str(image.top / "from-repo")))
    assert refused["exit_code"] == 3 and "no kernel" in str(refused["error"]), refused
    missing = image.dm.json(*image.args("--bootc-from", f"oci-archive:{image.top / 'none.tar'}", "--bootc-lint"))
    assert missing["exit_code"] == 5 and "is not a file" in str(missing["error"]), missing
    with_run = image.dm.json(*image.args("--bootc-from", layout, "--bootc-run", str(image.top / "from.raw")))
    assert with_run["exit_code"] == 5, with_run


@pytest.mark.qemu
def test_a_derived_container_image_boots(image: Image) -> None:
    """A layer on top of the root's image (a file added, one removed, a directory replaced, the initramfs gone,
    as a Containerfile's RUN leaves them), read from an OCI archive: the image's dracut makes the initramfs, the
    whiteouts hold, and the VM boots into the deployment."""
    labels = json.loads(subprocess.run(["skopeo", "inspect", f"oci:{image.top / 'oci'}:latest"], capture_output=True,
                                       text=True, check=True).stdout)["Labels"]
    kver = labels["ostree.linux"]
    derived = image.top / "derived"
    # the parents come with their own entries, as podman writes them (they keep what is below)
    _add_layer(image.top / "oci", derived, {
        "usr/": b"",
        "usr/bin/": b"",
        "usr/bin/dm-derived": b"#!/bin/sh\necho DM-DERIVED-$(id -u)\n",
        "usr/bin/.wh.tree": b"",
        "usr/share/doc/tree/": b"",
        "usr/share/doc/tree/.wh..wh..opq": b"",
        "usr/share/doc/tree/derived": b"derived\n",
        f"usr/lib/modules/{kver}/.wh.initramfs.img": b"",
    }, "derived")
    archive = image.top / "derived.tar"
    subprocess.run(["skopeo", "copy", "--quiet", f"oci:{derived}:derived", f"oci-archive:{archive}:derived"],
                   check=True)
    built = image.json("--bootc-from", f"oci-archive:{archive}", "--bootc-image", str(image.top / "derived.qcow2"))
    assert "bootc-dracut" in built["durations"], built["durations"]  # type: ignore[operator]
    assert built["bootc"]["commit"] != image.bootc("commit")["commit"]  # type: ignore[index]
    process = subprocess.Popen(image.dm.command("--bootc-run", str(image.top / "derived.qcow2")), env=image.dm.env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    transcript: list[str] = []
    try:
        console = SerialConsole(process, transcript)
        console.login("root", ROOT_PASSWORD, timeout=300)
        assert console.check("dm-derived") == "DM-DERIVED-0"
        assert console.run("command -v tree")[0] != 0
        assert console.check("ls /usr/share/doc/tree") == "derived"
        assert console.check("ls /usr/lib/modules/*/initramfs.img | wc -l") == "1"
        assert built["bootc"]["commit"] in console.check("ostree admin status")  # type: ignore[index]
        console.send("systemctl poweroff")
    finally:
        _end_boot(process)
        (image.top / "derived-console.log").write_text("".join(transcript))


def test_an_image_podman_derived_is_read_from_its_store(image: Image) -> None:
    """A Containerfile FROM the root's image, built by podman (in a store of its own), read as
    containers-storage: the commit holds what RUN added and lacks what it removed."""
    podman = shutil.which("podman")
    assert podman, "podman is not installed (.ci/install installs it)"
    store = image.top / "podman"
    context = image.top / "containerfile"
    context.mkdir()
    (context / "Containerfile").write_text(
        f"FROM oci-archive:{image.top / 'image.tar'}:v1\n"
        "RUN rm /usr/bin/tree && printf '#!/bin/sh\\necho DM-PODMAN\\n' > /usr/bin/dm-podman"
        " && chmod 755 /usr/bin/dm-podman\n")
    storage = [f"--root={store}/root", f"--runroot={store}/run", "--storage-driver=overlay"]
    # chroot isolation: RUN needs no OCI runtime (nor cgroups) on the host
    subprocess.run([podman, *storage, "build", "--isolation=chroot", "--quiet", "-t", "localhost/dm-derived:latest",
                    str(context)], check=True, capture_output=True)
    reference = f"containers-storage:[overlay@{store}/root+{store}/run]localhost/dm-derived:latest"
    try:
        built = image.json("--bootc-from", reference, "--bootc-commit", str(image.top / "podman-repo"))
        commit = str(built["bootc"]["commit"])  # type: ignore[index]
        repo = f"--repo={image.top / 'podman-repo'}"
        assert "/usr/bin/dm-podman" in ostree(repo, "ls", commit, "/usr/bin/dm-podman")
        assert subprocess.run(["ostree", repo, "ls", commit, "/usr/bin/tree"], capture_output=True).returncode != 0
        assert ostree(repo, "ls", commit, "/usr/bin/bash").split()[-1] == "/usr/bin/bash"
    finally:
        subprocess.run([podman, *storage, "system", "reset", "--force"], check=False, capture_output=True)


@pytest.fixture(scope="module")
def update_disk(image: Image) -> Path:
    """A second commit (jq added to the root) on the same ref, in the repo as an ext4 disk image."""
    image.json("--install", "jq")
    second = image.json("--bootc-commit", str(image.top / "repo"))
    first = image.bootc("commit")["commit"]
    commit = second["bootc"]["commit"]  # type: ignore[index]
    assert commit != first
    log = ostree(f"--repo={image.top / 'repo'}", "log", REF)
    assert f"commit {commit}" in log and f"Parent:  {first}" in log
    disk = image.top / "updates.img"
    subprocess.run([sbin("mkfs.ext4"), "-q", "-d", str(image.top / "repo"), str(disk), "1G"], check=True)
    image.results["second"] = second
    return disk


@pytest.fixture
def console(image: Image, update_disk: Path) -> Iterator[SerialConsole]:
    process = subprocess.Popen(image.dm.command("--bootc-run", str(image.top / "disk.qcow2"), "--bootc-run-drive",
                                                str(update_disk)), env=image.dm.env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE)
    transcript: list[str] = []
    try:
        yield SerialConsole(process, transcript)
    finally:
        _end_boot(process)
        (image.top / "serial-console.log").write_text("".join(transcript))


def _end_boot(process: subprocess.Popen[bytes]) -> None:
    """End a boot as a user would, with SIGTERM (deb-mock deletes its boot directory); SIGKILL if it hangs."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def booted_commit(console: SerialConsole) -> str:
    status = console.check("ostree admin status")
    match = re.search(r"^\* \S+ ([0-9a-f]{64})\.\d+", status, re.M)
    assert match, status
    return match.group(1)


@pytest.mark.qemu
def test_image_boots_upgrades_and_rolls_back(image: Image, console: SerialConsole,
                                             trixie: dict[str, object]) -> None:
    first = str(image.bootc("commit")["commit"])
    second = str(image.results["second"]["bootc"]["commit"])  # type: ignore[index]
    console.login("root", ROOT_PASSWORD, timeout=300)
    # a run of the boot's config's root meanwhile, after a killed run of that root (its holder record is left
    # in the lock), looks for that run's leftovers: the boot is none of them (it was taken for one once)
    (image.dm.basedir / "trixie-amd64.lock").write_text('{"pid": 1, "mode": "--chroot"}')
    image.dm.ok("-r", "trixie-amd64", "--chroot", "true")
    time.sleep(1)  # the scan kills what it takes for leftovers before the chroot returns; their exit takes a moment
    assert console.process.poll() is None
    assert console.check("systemctl is-system-running --wait") == "running"
    assert console.check("systemctl --failed --no-legend") == ""
    # the update stamps came with the disk: the first boot did not rebuild the linker cache the image has
    for unit in ("ldconfig.service", "systemd-update-done.service"):
        assert console.check(f"systemctl show -P ConditionResult {unit}") == "no", unit
    assert booted_commit(console) == first
    assert console.run("touch /usr/probe")[0] != 0, "/usr must be read-only"
    assert console.check("tree --version").startswith("tree v")
    assert console.run("command -v jq")[0] != 0
    assert console.check("hostname") == "dm-image"
    assert "sudo" in console.check("id alice")
    assert console.check("ls /efi/EFI") == "BOOT", "the ESP mounts on /efi when it is first used"
    assert "Timed out waiting for device" not in "".join(console.transcript)
    console.check("mkdir -p /var/mnt/updates && mount -o ro /dev/vdb /var/mnt/updates")
    console.check("ostree admin upgrade", timeout=300)
    console.send("systemctl reboot")
    console.login("root", ROOT_PASSWORD, timeout=300)
    assert booted_commit(console) == second
    assert console.check("jq --version").startswith("jq-")
    assert console.check("systemctl is-system-running --wait") == "running"
    # the rollback: the first deployment is the default again (ostree lists its deployments in the boot
    # loader's order). The boot loader takes the first entry, as the reboot into the upgrade just showed,
    # so a third boot would show no more
    console.check("ostree admin set-default 1")
    order = re.findall(r"^(\*?) *\S+ ([0-9a-f]{64})\.\d+", console.check("ostree admin status"), re.M)
    assert order == [("", first), ("*", second)], order
    console.send("systemctl poweroff")


@pytest.mark.qemu
def test_a_boot_check_without_a_login_prompt_fails_and_leaves_no_qemu(image: Image) -> None:
    """The boot check's failure: exit 11 and no qemu left. Its success (exit 0 at the login prompt, from a VDI)
    is test_rootless' boot, so the suite boots once less."""
    too_short = image.dm.run("--bootc-run", str(image.top / "disk.qcow2"), "--bootc-run-timeout", "3")
    assert too_short.returncode == 11 and "no login prompt" in too_short.stderr, too_short.stderr[-2000:]
    assert not [p for p in os.listdir("/proc") if p.isdigit() and _is_qemu(p)], "qemu must not outlive deb-mock"


def _is_qemu(pid: str) -> bool:
    try:
        return b"qemu-system" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _linking_deb(top: Path, victim: Path, home: Path, var_home: Path) -> Path:
    """A .deb whose postinst links /etc/ssh, /home/alice and /var/home to host paths (as FACTS.md's attack).

    The same paths also exist inside the root (the postinst makes them), so
    packages installed later unpack through the links there; a host-side
    operation that followed them would reach the host's copies instead.
    """
    tree = top / "links-deb"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text("Package: host-links\nVersion: 1.0\nArchitecture: all\n"
                                         "Maintainer: deb-mock tests <tests@deb-mock.invalid>\n"
                                         "Description: links system paths to host paths\n")
    postinst = tree / "DEBIAN/postinst"
    postinst.write_text(f"#!/bin/sh\nset -e\nmkdir -p {victim} {home} {var_home} /home\n"
                        f"[ -e /etc/ssh ] || ln -s {victim} /etc/ssh\n"
                        f"ln -sfn {var_home} /var/home\nln -sfn {home} /home/alice\n")
    postinst.chmod(0o755)
    deb = top / "host-links_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)], check=True, capture_output=True)
    return deb


def test_links_a_package_ships_never_lead_the_image_work_to_the_host(image: Image, tmp_path: Path) -> None:
    """Runs last: it changes the module's root. The host's files stay as they were; the image still builds."""
    victim, home, var_home = tmp_path / "victim", tmp_path / "alice-home", tmp_path / "var-home"
    for directory in (victim, home, var_home):
        directory.mkdir()
    (victim / "ssh_host_ed25519_key").write_text("the host's key")
    (home / ".bashrc").write_text("the host's bashrc")
    before = {p: (p.stat().st_mode, p.stat().st_uid, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file()}
    image.json("--install", str(_linking_deb(tmp_path, victim, home, var_home)))
    commit = image.json("--bootc-commit", str(tmp_path / "repo"))
    assert commit["exit_code"] == 0
    after = {p: (p.stat().st_mode, p.stat().st_uid, p.read_bytes()) for p in tmp_path.rglob("*")
             if p.is_file() and p in before}
    assert after == before
    assert sorted(p.name for p in victim.iterdir()) == ["ssh_host_ed25519_key"]
    assert sorted(p.name for p in home.iterdir()) == [".bashrc"] and not list(var_home.iterdir())


CLOUD_USER_DATA = """\
#cloud-config
users:
  - name: carol
    lock_passwd: false
    plain_text_passwd: carol-pw
    shell: /bin/bash
runcmd:
  - [sh, -c, "echo DM-CLOUD-MARKER-$(id -u) > /dev/ttyS0"]
"""


def _nocloud_seed(top: Path) -> Path:
    """A NoCloud seed: a FAT file system labelled CIDATA with user-data and meta-data (mtools: no mount)."""
    for name, text in (("user-data", CLOUD_USER_DATA), ("meta-data", "instance-id: dm-cloud-1\n")):
        (top / name).write_text(text)
    seed = top / "seed.img"
    subprocess.run([sbin("mkfs.vfat"), "-C", "-n", "CIDATA", str(seed), "2048"], check=True, capture_output=True)
    subprocess.run(["mcopy", "-i", str(seed), str(top / "user-data"), str(top / "meta-data"), "::"], check=True)
    return seed


@pytest.mark.qemu
def test_a_cloud_image_runs_its_user_data_and_grows_to_its_disk(dm: DebMock, trixie: dict[str, object],
                                                               tmp_path: Path) -> None:
    """plugins.bootc.cloud_init: the NoCloud seed's user-data runs, its user logs in, / grows to a bigger disk."""
    config = tmp_path / "cloud.yaml"
    config.write_text("templates: [trixie-amd64]\nname: trixie-amd64\nplugins:\n  bootc:\n    cloud_init: true\n")
    built = dm.json("-r", str(config), "--uniqueext", "cloud", "--bootc-image", str(tmp_path / "cloud.qcow2"))
    assert built["exit_code"] == 0, built
    small = dm.run("--bootc-run", str(tmp_path / "cloud.qcow2"), "--bootc-run-size", "1G", "--bootc-run-timeout", "9")
    assert small.returncode == 5 and "smaller than the image" in small.stderr, small.stderr
    process = subprocess.Popen(dm.command("--bootc-run", str(tmp_path / "cloud.qcow2"), "--bootc-run-drive",
                                          str(_nocloud_seed(tmp_path)), "--bootc-run-size", "6G"),
                               env=dm.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    transcript: list[str] = []
    try:
        console = SerialConsole(process, transcript)
        console.expect(rb"DM-CLOUD-MARKER-0", 600)  # runcmd ran, as root, at the first boot
        console.send("")
        console.login("carol", "carol-pw", timeout=120)
        assert console.check("id -un") == "carol"
        size = int(console.check("df -B1 --output=size / | tail -n 1"))
        assert size > 5 << 30, f"/ did not grow to the 6G disk: {size} bytes"
        assert console.check("systemctl is-enabled systemd-networkd") == "enabled"
        assert console.check("cloud-init status --format=yaml | grep -c '^status: done'") == "1"
    finally:
        _end_boot(process)
        (tmp_path / "serial-console.log").write_text("".join(transcript))
