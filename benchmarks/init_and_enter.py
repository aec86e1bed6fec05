#!/usr/bin/env python3
"""How fast deb-mock gives a root, against mmdebstrap and sbuild's tarball, measured in one run.

Prints, with min/median/max of several runs:

- cold ``--init`` (no root, no root cache; the apt cache may be warm) against a
  bare ``mmdebstrap --variant=buildd`` of the same suite (target ratio <= 1.1);
- warm ``--init`` and ``--chroot true`` on a warm root against unpacking
  sbuild's unshare tarball, the step every sbuild build starts with
  (target ratio <= 0.1), and in absolute terms (target <= 0.1 s each), split into
  the interpreter's start, deb-mock's imports, its own work and the sandbox entry;
- ``--init`` restored from the root cache (after ``--scrub=chroot``);
- the peak resident memory of the deb-mock process itself (target <= 100 MB).

Run as root on a quiet machine: ``.venv/bin/python benchmarks/init_and_enter.py [--runs 3]``.
It works in its own base and cache directories, so it does not touch your roots.

Between runs the previous tree is moved aside, not deleted (all are deleted at
the end): on an ext4 without a journal (this project's test machines) the
kernel skips recently deleted inodes one by one when it allocates new ones, so
writing a tree within a minute of deleting one is several times slower, and
by how much depends on what was deleted last, not on the tool measured.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

SUITE = "trixie"


def deb_mock(top: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "deb_mock", "-r", f"{SUITE}-amd64", "--config-opts", f"basedir={top}/roots",
            "--config-opts", f"cache_topdir={top}/cache", "-q", *args]


def measure(argv: list[str], peak: list[int] | None = None) -> float:
    """Wall time of ``argv`` (to its exit, not to a poll); with ``peak``, also the highest RSS of that process
    (not its children), sampled by a thread."""
    start = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    highest = [0]

    def sample() -> None:
        with contextlib.suppress(psutil.Error):
            watched = psutil.Process(process.pid)
            while process.returncode is None:
                highest[0] = max(highest[0], watched.memory_info().rss)
                time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True) if peak is not None else None
    if sampler:
        sampler.start()
    process.wait()
    elapsed = time.monotonic() - start
    if sampler:
        sampler.join()
    if process.returncode != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{process.stderr.read().decode() if process.stderr else ''}")
    if peak is not None:
        peak.append(highest[0])
    return elapsed


class Trash:
    """Moves trees out of the way (a rename) so that nothing is deleted while measuring."""

    def __init__(self, top: Path) -> None:
        self.directory = top / "trash"
        self.count = 0

    def __call__(self, *paths: Path) -> None:
        self.directory.mkdir(exist_ok=True)
        for path in paths:
            if path.exists():
                self.count += 1
                path.rename(self.directory / str(self.count))


def series(runs: int, before: Callable[[], None], argv: list[str], peak: list[int] | None = None) -> list[float]:
    values = []
    for _ in range(runs):
        before()
        values.append(measure(argv, peak))
    return values


def line(label: str, values: list[float]) -> float:
    median = statistics.median(values)
    print(f"{label:44} min {min(values):7.3f}s  median {median:7.3f}s  max {max(values):7.3f}s", flush=True)
    return median


def split(starts: list[float], imports: list[float], warms: list[float], enters: list[float]) -> None:
    """Where a warm run's time goes: the interpreter, deb-mock's imports, its own work, the sandbox entry.

    Each part is the median of its differences within one round of the alternating series, so that a busy
    second moves all four measurements of a round alike instead of one part alone.
    """
    def part(later: list[float], earlier: list[float]) -> float:
        return statistics.median(b - a for a, b in zip(earlier, later, strict=True))

    print(f"  split of the warm runs (medians): python start {statistics.median(starts):.3f}s, "
          f"importing deb_mock.cli {part(imports, starts):.3f}s, --init's own work {part(warms, imports):.3f}s, "
          f"the sandbox entry of --chroot {part(enters, warms):.3f}s")


def warm_rounds(top: Path, rounds: int, peak: list[int]) -> tuple[list[float], ...]:
    """python's start, the import of deb_mock.cli, a warm --init and a --chroot true, in turn, ``rounds`` times.

    The restored trees' writeback must not land in the warm runs, and the series alternate so that all four
    see the same machine: a warm run is ~0.1 s, and a busy second moves it by 20 ms.
    """
    os.sync()
    nothing = lambda: None  # noqa: E731
    starts: list[float] = []
    imports: list[float] = []
    warms: list[float] = []
    enters: list[float] = []
    for _ in range(rounds):
        starts += series(1, nothing, [sys.executable, "-c", "pass"])
        imports += series(1, nothing, [sys.executable, "-c", "import deb_mock.cli"])
        warms += series(1, nothing, deb_mock(top, "--init"), peak)
        enters += series(1, nothing, deb_mock(top, "--chroot", "true"), peak)
    return starts, imports, warms, enters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    # deb-mock as installed, its bytecode cached: an exported PYTHONDONTWRITEBYTECODE makes an editable
    # install compile ~50 modules on every start (50 ms no user pays)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    if os.geteuid() != 0:
        sys.exit("run as root")
    top = Path(tempfile.mkdtemp(prefix="bench-init-", dir="/var/tmp"))
    peak: list[int] = []
    try:
        target = top / "mmdebstrap-tree"
        trash = Trash(top)
        root_dir, root_cache = top / "roots" / f"{SUITE}-amd64", top / "cache" / f"{SUITE}-amd64" / "root_cache"
        # warm the apt cache once so that neither side is measured downloading more than the other
        subprocess.run(deb_mock(top, "--init"), check=True)
        # interleaved, so that the machine's slow and fast minutes fall on both sides alike
        colds: list[float] = []
        bares: list[float] = []
        for _ in range(args.runs):
            colds += series(1, lambda: trash(root_dir, root_cache), deb_mock(top, "--init"), peak)
            bares += series(1, lambda: trash(target),
                            ["mmdebstrap", "--quiet", "--variant=buildd", SUITE, str(target)])
        cold = line("deb-mock --init (cold, no root cache)", colds)
        bare = line("mmdebstrap --variant=buildd", bares)
        print(f"  ratio cold init / mmdebstrap: {cold / bare:.2f} (target <= 1.1); "
              f"pairwise: {', '.join(f'{c / b:.2f}' for c, b in zip(colds, bares, strict=True))}")
        restored = line("deb-mock --init (restored from root cache)", series(
            args.runs, lambda: trash(root_dir), deb_mock(top, "--init"), peak))
        starts, imports, warms, enters = warm_rounds(top, args.runs * 3, peak)
        warm = line("deb-mock --init (warm root)", warms)
        enter = line("deb-mock --chroot true (warm root)", enters)
        tarball = top / f"{SUITE}.tar.zst"
        subprocess.run(["mmdebstrap", "--quiet", "--variant=buildd", SUITE, str(tarball)], check=True)
        unpack_dir = top / "unpacked"
        unpack = line("unpack sbuild's tarball (tar --zstd -x)", series(
            args.runs, lambda: (trash(unpack_dir), unpack_dir.mkdir()),  # type: ignore
            ["tar", "--zstd", "-xf", str(tarball), "-C", str(unpack_dir)]))
        print(f"  ratio warm init / unpack: {warm / unpack:.3f}; --chroot true / unpack: {enter / unpack:.3f} "
              "(target <= 0.1)")
        print(f"  absolute: warm --init {warm:.3f}s, warm --chroot true {enter:.3f}s (target <= 0.100s each)")
        split(starts, imports, warms, enters)
        print(f"  restored init / mmdebstrap: {restored / bare:.2f}")
        print(f"peak RSS of the deb-mock process: {max(peak) / 2**20:.1f} MiB (target <= 100 MB)")
    finally:
        subprocess.run(deb_mock(top, "--scrub=all"), check=False, capture_output=True)
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
