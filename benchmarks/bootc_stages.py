#!/usr/bin/env python3
"""The bootc plugin's stages, cold and warm, beside the same steps done by hand with Debian's tools.

Prints, measured in one run on one machine:

- every stage of ``--bootc-image`` cold (after ``--scrub=bootc``) and warm
  (an unchanged root imaged again), and ``--bootc-commit`` and
  ``--bootc-container`` on the warm caches;
- one-package changes (``--install sl``, then cowsay, figlet, cmatrix,
  ncdu), each followed by ``--bootc-image``, min/median/max, and whether
  dracut ran; then the last root imaged cold, whose disk must be the same
  bytes;
- boot to the login prompt of the cold image under TCG (``--bootc-run
  --bootc-run-timeout``), ``--boots`` times (3) with qemu from the config's
  release (the default) and as often, alternating, with the host's qemu,
  min/median/max of each (with ``--boot-only IMAGE``: only that, for an
  image made before);
- by hand, on the same inputs: the boot packages installed by mmdebstrap
  (``--include`` minus a bare bootstrap), ``ostree commit`` of the same tree
  into a fresh archive repository, ``tar | gzip -n`` of it, ``mkfs.ext4 -d`` of
  the deployed sysroot, ``mkfs.fat`` + ``mcopy``, and ``qemu-img convert``, each
  with the host's own Debian tools.

Run as root: ``.venv/bin/python benchmarks/bootc_stages.py``. It works in its
own base and cache directories, so it does not touch your roots.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITE = "trixie"
#: one package each re-image adds: commands in /usr/games and /usr/bin, a library, an alternative
CHANGE_PACKAGES = ("sl", "cowsay", "figlet", "cmatrix", "ncdu")
BOOT_PACKAGES = "linux-image-amd64,systemd-sysv,udev,dbus,dracut,ostree,ostree-boot,kmod,e2fsprogs"


def deb_mock(top: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "deb_mock", "-r", f"{SUITE}-amd64", "--config-opts", f"basedir={top}/roots",
            "--config-opts", f"cache_topdir={top}/cache", "--plugin-option", "bootc:root_password=bench", *args]


def run_json(argv: list[str]) -> tuple[float, dict[str, object]]:
    start = time.monotonic()
    result = subprocess.run([*argv, "--json"], capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{result.stderr[-3000:]}")
    return elapsed, json.loads(result.stdout)


def timed(argv: list[str], **kwargs: object) -> float:
    start = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)  # type: ignore
    return time.monotonic() - start


def show(label: str, seconds: float) -> None:
    print(f"  {label:46} {seconds:8.1f}s", flush=True)


def stages(title: str, total: float, result: dict[str, object]) -> dict[str, float]:
    durations = result["durations"]
    assert isinstance(durations, dict)
    print(f"{title}: {total:.1f}s wall")
    for name, seconds in durations.items():
        if name.startswith("bootc"):
            show(name, seconds)
    return durations


def reimage(top: Path, changes: int, settle: float, cold_total: float) -> None:
    """One package added, then --bootc-image, ``changes`` times (another package each time); then a cold image of
    the last root, whose disk must be the same bytes.

    Each change starts after ``settle`` seconds of quiet: on a file system
    mounted with ``discard`` the writes right after the previous run's
    deletions are several times slower, which is that run's cost, not this
    one's.
    """
    totals, raw = [], ""
    for package in CHANGE_PACKAGES[:changes]:
        time.sleep(settle)
        subprocess.run(deb_mock(top, "--install", package, "-q"), check=True)
        total, result = run_json(deb_mock(top, "--bootc-image", str(top / "changed.qcow2")))
        durations = stages(f"deb-mock --bootc-image after --install {package} (one package)", total, result)
        print(f"  dracut {'ran' if 'bootc-dracut' in durations else 'skipped (the last initramfs again)'}")
        totals.append(total)
        bootc = result["bootc"]
        assert isinstance(bootc, dict)
        raw = str(bootc["raw_sha256"])
    if not totals:
        return
    median = statistics.median(totals)
    print(f"one-package re-image ({len(totals)} changes): min {min(totals):.1f}s  median {median:.1f}s  max "
          f"{max(totals):.1f}s; median {median / cold_total:.2f} of the cold image  (target: <= 45s)", flush=True)
    subprocess.run(deb_mock(top, "--scrub=bootc"), check=True, capture_output=True)
    time.sleep(settle)
    total, result = run_json(deb_mock(top, "--bootc-image", str(top / "recold.qcow2")))
    bootc = result["bootc"]
    assert isinstance(bootc, dict)
    same = bootc["raw_sha256"] == raw
    print(f"the last root imaged cold: {total:.1f}s; raw disk {'the same bytes' if same else 'DIFFERENT'} "
          f"({raw[:16]}…)", flush=True)


def boot_to_login(top: Path, image: Path, boots: int) -> None:
    """The seconds from qemu's start to the login prompt, as --bootc-run's boot check reports them.

    Alternating, in the same run: qemu from the config's release (the default, ``qemu_from: tools``; its
    one-time bootstrap is not counted) and the host's own qemu (``qemu_from: host``).
    """
    seconds: dict[str, list[float]] = {"tools": [], "host": []}
    for _ in range(boots):
        for source, found_seconds in seconds.items():
            result = subprocess.run(deb_mock(top, "--bootc-run", str(image), "--bootc-run-timeout", "600",
                                             "--config-opts", f"plugins.bootc.qemu_from={source}"),
                                    capture_output=True, text=True, check=False)
            found = re.search(r"login prompt after (\d+)s", result.stderr)
            if result.returncode != 0 or not found:
                sys.exit(f"the boot check failed ({result.returncode}):\n{result.stderr[-3000:]}")
            found_seconds.append(float(found.group(1)))
    for source, label in (("tools", "qemu of the config's release (default)"), ("host", "the host's qemu")):
        taken = seconds[source]
        print(f"boot to login under TCG, {label} ({boots} boots): min {min(taken):.0f}s  median "
              f"{statistics.median(taken):.0f}s  max {max(taken):.0f}s", flush=True)
    print(f"median ratio release/host: {statistics.median(seconds['tools']) / statistics.median(seconds['host']):.2f}"
          "  (target: the default's median <= 40s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boots", type=int, default=3, help="boots of the cold image (0: none)")
    parser.add_argument("--changes", type=int, default=5,
                        help=f"one-package re-images (at most {len(CHANGE_PACKAGES)})")
    parser.add_argument("--settle", type=float, default=30, help="seconds of quiet before each re-image")
    parser.add_argument("--boot-only", metavar="IMAGE", type=Path,
                        help="only boot IMAGE (made before) --boots times: the boot time alone, in minutes")
    args = parser.parse_args()
    # deb-mock as installed, its bytecode cached: an exported PYTHONDONTWRITEBYTECODE makes an editable
    # install compile ~50 modules on every start (50 ms no user pays)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    if os.geteuid() != 0:
        sys.exit("run as root")
    top = Path(tempfile.mkdtemp(prefix="bench-bootc-", dir="/var/tmp"))
    if args.boot_only:
        try:
            boot_to_login(top, args.boot_only.absolute(), max(args.boots, 1))
        finally:
            shutil.rmtree(top)
        return
    try:
        subprocess.run(deb_mock(top, "--init", "-q"), check=True)
        cold_total, cold = run_json(deb_mock(top, "--bootc-image", str(top / "cold.qcow2")))
        stages("deb-mock --bootc-image, cold (no stage cached)", cold_total, cold)
        warm_total, warm = run_json(deb_mock(top, "--bootc-image", str(top / "warm.qcow2")))
        stages("deb-mock --bootc-image, warm (unchanged root)", warm_total, warm)
        commit_total, _ = run_json(deb_mock(top, "--bootc-commit", str(top / "repo")))
        show("deb-mock --bootc-commit into a new repo (warm)", commit_total)
        oci_total, _ = run_json(deb_mock(top, "--bootc-container", f"oci:{top / 'oci'}"))
        show("deb-mock --bootc-container (cold OCI stage)", oci_total)
        reimage(top, args.changes, args.settle, cold_total)
        if args.boots:
            boot_to_login(top, top / "cold.qcow2", args.boots)

        print("by hand, the same steps with the host's Debian tools:")
        bare = timed(["mmdebstrap", "--quiet", "--variant=buildd", "--skip=cleanup/apt/lists", SUITE,
                      str(top / "bare")])
        with_boot = timed(["mmdebstrap", "--quiet", "--variant=buildd", f"--include={BOOT_PACKAGES}",
                           "--skip=cleanup/apt/lists", SUITE, str(top / "boot")], env={**os.environ, "INITRD": "No"})
        show("boot packages: mmdebstrap --include minus bare", with_boot - bare)
        root = top / "roots" / f"{SUITE}-amd64" / "bootc"
        tree = next((root / "tree").glob("*/root"))
        show("ostree commit of the same tree (archive repo)", timed(["ostree", f"--repo={top / 'hand-repo'}", "init",
                                                                    "--mode=archive"]) +
             timed(["ostree", f"--repo={top / 'hand-repo'}", "commit", "--branch=bench", f"--tree=dir={tree}"]))
        with (top / "layer.tar.gz").open("wb") as out:
            start = time.monotonic()
            tar = subprocess.Popen(["tar", "--create", "--sort=name", "--numeric-owner", "--xattrs", "-C", str(tree),
                                    "."], stdout=subprocess.PIPE)
            subprocess.run(["gzip", "-n", "-6"], stdin=tar.stdout, stdout=out, check=True)
            tar.wait()
            show("tar | gzip -n of the tree (the OCI layer)", time.monotonic() - start)
        show("mkfs.ext4 -d of the tree (4G)", timed(["mkfs.ext4", "-q", "-F", "-d", str(tree), str(top / "root.img"),
                                                     "4G"]))
        show("mkfs.fat -C + mcopy (ESP)", timed(["mkfs.fat", "-F", "32", "-C", str(top / "esp.img"), "131072"]) +
             timed(["mcopy", "-i", str(top / "esp.img"), "/etc/hostname", "::/x"]))
        raw = next((root / "disk").glob("*/disk.raw"))
        show("qemu-img convert raw -> qcow2", timed(["qemu-img", "convert", "-O", "qcow2", str(raw),
                                                     str(top / "hand.qcow2")]))
    finally:
        subprocess.run(deb_mock(top, "--scrub=all"), check=False, capture_output=True)
        subprocess.run(["chattr", "-R", "-i", str(top)], check=False, capture_output=True)
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
