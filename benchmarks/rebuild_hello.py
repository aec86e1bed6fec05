#!/usr/bin/env python3
"""Rebuild hello with deb-mock, sbuild --chroot-mode=unshare and cowbuilder, side by side.

Prints the wall time of each run, the medians, the ratios (targets: deb-mock
with warm caches <= 0.4 of sbuild and <= 0.65 of cowbuilder, the fastest
anchor measured here), and whether the tools produced byte-identical .debs (they should: same build path, same
environment, same build dependencies), then the same for one binNMU of hello
(not timed). A script, not a test: run it as root on a quiet machine:

    .venv/bin/python benchmarks/rebuild_hello.py [--runs 3]

It installs sbuild if needed, gives root a subordinate id range (sbuild's
unshare mode needs one), creates sbuild's trixie tarball with mmdebstrap
(not timed), and fetches hello 2.12.3-1 (sid's; the archive here serves
no trixie sources) with deb-mock itself.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITE = "trixie"
PACKAGE = "hello"
VERSION = "2.12.3-1"
DEBS = (f"{PACKAGE}_{VERSION}_amd64.deb", f"{PACKAGE}-dbgsym_{VERSION}_amd64.deb")
DEB_MOCK = [sys.executable, "-m", "deb_mock", "-r", f"{SUITE}-amd64"]
RAM_UPPER = ["--enable-plugin", "tmpfs", "--plugin-option", "tmpfs:mounts=[]", "--plugin-option", "tmpfs:upper=true"]
SID_SOURCES = ["--config-opts", "source_suites=[sid]", "--config-opts",
               "apt_options=[Acquire::Check-Valid-Until=false]"]


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, text=True, capture_output=True, **kwargs)  # type: ignore[call-overload,no-any-return]


def timed(argv: list[str], cwd: Path) -> float:
    start = time.monotonic()
    result = subprocess.run(argv, cwd=cwd, text=True, capture_output=True, check=False)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(argv)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return elapsed


def prepare_sbuild(cache: Path) -> Path:
    if shutil.which("sbuild") is None:
        run(["apt-get", "install", "-y", "--no-install-recommends", "sbuild", "uidmap"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    for ids in ("/etc/subuid", "/etc/subgid"):
        text = Path(ids).read_text() if Path(ids).exists() else ""
        if not any(line.startswith("root:") for line in text.splitlines()):
            with open(ids, "a") as handle:
                handle.write("root:1000000:65536\n")
    tarball = cache / f"{SUITE}-amd64.tar.zst"
    if not tarball.exists():
        cache.mkdir(parents=True, exist_ok=True)
        print(f"creating sbuild's {tarball} with mmdebstrap (not timed)", flush=True)
        run(["mmdebstrap", "--variant=buildd", "--mode=unshare", SUITE, str(tarball)])
    return tarball


COW_BASE = Path(f"/var/cache/pbuilder/{SUITE}-amd64.cow")


def prepare_cowbuilder() -> None:
    if shutil.which("cowbuilder") is None:
        run(["apt-get", "install", "-y", "--no-install-recommends", "cowbuilder"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if not COW_BASE.exists():
        print(f"creating cowbuilder's {COW_BASE} (not timed)", flush=True)
        run(["cowbuilder", "--create", "--basepath", str(COW_BASE), "--distribution", SUITE])


def fetch_hello(work: Path) -> Path:
    dsc = next(work.glob(f"{PACKAGE}_{VERSION}.dsc"), None)
    if dsc:
        return dsc
    print("fetching hello's source and warming deb-mock's root with a first build (not timed)", flush=True)
    out = work / "warmup"
    run([*DEB_MOCK, *SID_SOURCES, "--resultdir", str(out), "--disable-plugin", "lintian",
         "--rebuild", f"{PACKAGE}/sid"])
    root_path = Path(run([*DEB_MOCK, "--print-root-path"]).stdout.strip()).parent
    fetched = next((root_path / "sources").rglob(f"{PACKAGE}_{VERSION}.dsc"))
    for file in fetched.parent.iterdir():
        shutil.copy2(file, work)
    dsc = work / fetched.name
    # once more as the timed runs build: the fetch ran with other apt options (sid's sources) and may have
    # refreshed the lists, so its build-deps alias is not theirs and the first timed run would ask apt
    run([*DEB_MOCK, "--resultdir", str(work / "warmup-timed"), "--disable-plugin", "lintian", "--rebuild", str(dsc)])
    return dsc


def own_time(wall: float, resultdir: Path) -> tuple[float, float]:
    """deb-mock's own part of a build: the wall time minus dpkg-buildpackage and the checkers (result.json);
    and of that, the source unpack (dpkg-source -x, which every builder runs before the build; deb-mock's
    later runs copy in the tree its first run kept, see deb_mock.source_trees)."""
    durations: dict[str, float] = json.loads((resultdir / "result.json").read_text())["durations"]
    own = wall - sum(float(durations.get(stage, 0.0)) for stage in ("build", "lintian", "autopkgtest", "piuparts"))
    return own, float(durations.get("unpack", 0.0))


def journal_caveat(path: Path) -> str | None:
    """A warning when ``path`` is on ext4 without a journal (this project's test machines' root file system).

    There, ext4 skips every inode freed in the last 60 s (6 min while its inode table block is dirty) each
    time it creates a file, one lookup per skipped inode: an unpack or a build that comes shortly after
    another tool deleted a tree (sbuild's chroot, cowbuilder's copy, a previous build) takes longer, and by
    how much depends on the order of the runs, not on the tool. deb-mock makes a build's upper in a block
    group of its own (deb_mock.spread_dirs), which avoids most but not all of it. A journalled ext4
    (mkfs.ext4's default) has no such check.
    """
    device = os.stat(path).st_dev
    name = Path(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}").resolve().name
    task = Path(f"/sys/fs/ext4/{name}/journal_task")
    if not task.exists() or task.read_text().strip() != "<none>":
        return None
    return (f"note: {path} is on ext4 without a journal ({name}): each file created there skips the inodes "
            "freed in the minutes before, so every tool's times here depend on what the run before it deleted")


def digests(directory: Path, debs: tuple[str, ...] = DEBS) -> dict[str, str]:
    return {name: hashlib.sha256((directory / name).read_bytes()).hexdigest() for name in debs}


#: one binNMU, made by both tools with the same message, number, date and author (not timed)
BINNMU = ["Rebuild for the benchmark", "1", "1764000000", "deb-mock benchmark <bench@example.invalid>"]


def compare_binnmu(work: Path, dsc: Path) -> None:
    """deb-mock's and sbuild's binNMU of hello: the same bytes (sbuild's changelog entry, arch-any only)."""
    message, number, stamp, author = BINNMU
    ours, theirs = work / "binnmu-deb-mock", work / "binnmu-sbuild"
    theirs.mkdir()
    timed([*DEB_MOCK, "--resultdir", str(ours), "--disable-plugin", "lintian", "--rebuild", str(dsc),
           "--make-binNMU", message, "--binNMU", number, "--binNMU-timestamp", stamp, "-m", author], work)
    timed(["sbuild", "--chroot-mode=unshare", f"--dist={SUITE}", "--no-run-lintian", "--no-run-piuparts",
           "--no-run-autopkgtest", "--no-source", f"--make-binNMU={message}", f"--binNMU={number}",
           f"--binNMU-timestamp={stamp}", f"--maintainer={author}", str(dsc)], theirs)
    debs = (f"{PACKAGE}_{VERSION}+b{number}_amd64.deb", f"{PACKAGE}-dbgsym_{VERSION}+b{number}_amd64.deb")
    same = digests(ours, debs) == digests(theirs, debs)
    print(f"binNMU +b{number}: byte-identical .debs, deb-mock vs sbuild: {'yes' if same else 'NO'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-cowbuilder", action="store_true", help="skip cowbuilder")
    args = parser.parse_args()
    # deb-mock as installed, its bytecode cached: an exported PYTHONDONTWRITEBYTECODE makes an editable
    # install compile ~50 modules on every start (50 ms no user pays)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    if os.geteuid() != 0:
        sys.exit("run as root")
    work = Path(tempfile.mkdtemp(prefix="bench-hello-", dir="/var/tmp"))
    prepare_sbuild(Path("/root/.cache/sbuild"))
    if not args.no_cowbuilder:
        prepare_cowbuilder()
    dsc = fetch_hello(work)
    times: dict[str, list[float]] = {"deb-mock": [], "deb-mock-ram": [], "sbuild": []}
    if not args.no_cowbuilder:
        times["cowbuilder"] = []
    outputs: dict[str, Path] = {}
    own: dict[str, list[float]] = {"deb-mock": [], "deb-mock-ram": []}
    unpack: dict[str, list[float]] = {"deb-mock": [], "deb-mock-ram": []}
    for index in range(args.runs):
        out = work / f"deb-mock-{index}"
        times["deb-mock"].append(timed([*DEB_MOCK, "--resultdir", str(out), "--disable-plugin", "lintian",
                                        "--rebuild", str(dsc)], work))
        outputs["deb-mock"] = out
        own_part, unpack_part = own_time(times["deb-mock"][-1], out)
        own["deb-mock"].append(own_part)
        unpack["deb-mock"].append(unpack_part)
        # the same with the tmpfs plugin's upper: the build's writable layer in RAM
        ram = work / f"deb-mock-ram-{index}"
        times["deb-mock-ram"].append(timed([*DEB_MOCK, "--resultdir", str(ram), "--disable-plugin", "lintian",
                                            *RAM_UPPER, "--rebuild", str(dsc)], work))
        outputs["deb-mock-ram"] = ram
        own_part, unpack_part = own_time(times["deb-mock-ram"][-1], ram)
        own["deb-mock-ram"].append(own_part)
        unpack["deb-mock-ram"].append(unpack_part)
        sbuild_dir = work / f"sbuild-{index}"
        sbuild_dir.mkdir()
        times["sbuild"].append(timed(["sbuild", "--chroot-mode=unshare", f"--dist={SUITE}", "--arch-all",
                                      "--no-run-lintian", "--no-run-piuparts", "--no-run-autopkgtest",
                                      "--no-source", str(dsc)], sbuild_dir))
        outputs["sbuild"] = sbuild_dir
        if "cowbuilder" in times:
            cow_dir = work / f"cowbuilder-{index}"
            cow_dir.mkdir()
            times["cowbuilder"].append(timed(["cowbuilder", "--build", "--basepath", str(COW_BASE),
                                              "--buildresult", str(cow_dir), str(dsc)], work))
            outputs["cowbuilder"] = cow_dir
        print(f"run {index + 1}: " + ", ".join(f"{tool} {values[-1]:.1f}s" for tool, values in times.items())
              + f" (deb-mock's own {own['deb-mock'][-1]:.3f}s, in RAM {own['deb-mock-ram'][-1]:.3f}s)", flush=True)
    median = {tool: statistics.median(values) for tool, values in times.items()}
    for tool, values in times.items():
        print(f"{tool:12} min {min(values):6.1f}s  median {median[tool]:6.1f}s  max {max(values):6.1f}s")
    for name, values in own.items():
        print(f"{name} own time (wall minus dpkg-buildpackage and checkers): min {min(values):.3f}s  "
              f"median {statistics.median(values):.3f}s  max {max(values):.3f}s (target <= 0.3); of it the "
              f"source unpack (dpkg-source -x or the cached tree) median {statistics.median(unpack[name]):.3f}s")
    for ours_name in ("deb-mock", "deb-mock-ram"):
        print(f"ratio {ours_name}/sbuild (medians): {median[ours_name] / median['sbuild']:.2f} (target <= 0.4)")
        if "cowbuilder" in median:
            print(f"ratio {ours_name}/cowbuilder (medians): {median[ours_name] / median['cowbuilder']:.2f} "
                  "(target <= 0.65)")
    ours = digests(outputs["deb-mock"])
    for tool in [t for t in outputs if t != "deb-mock"]:
        theirs = digests(outputs[tool])
        print(f"byte-identical .debs, deb-mock vs {tool}: {'yes' if ours == theirs else 'NO'}")
        for name in DEBS:
            print(f"  {name}: deb-mock {ours[name][:16]}  {tool} {theirs[name][:16]}")
    compare_binnmu(work, dsc)
    shutil.rmtree(work, ignore_errors=True)
    caveat = journal_caveat(Path("/var/lib"))  # the roots, sbuild's tarball, cowbuilder's base
    if caveat:
        print(caveat)


if __name__ == "__main__":
    main()
