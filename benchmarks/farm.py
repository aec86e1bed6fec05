#!/usr/bin/env python3
"""A second builder of a farm, ready from the registry, against a cold one: measured in one run.

Starts Debian's docker-registry on loopback and, per run, two builders with
their own base and cache directories (the apt cache shared, as on one
machine; a farm's builders would share it through apt-cacher-ng instead):

- builder 1: a cold ``--init`` (bootstrap) that pushes its root cache, then a
  rebuild of hello (sid's source) that installs its build dependencies and
  pushes that layer;
- builder 2: ``--init`` with empty local caches, restored from the registry,
  then the same rebuild on the build-deps layer pulled from the registry.

Prints min/median/max of each, the ratios (targets: ready <= 0.3, hello
on a worker from nothing <= 0.5; lintian off on both) and the bytes pushed
and pulled. "hello from nothing" is what a job costs on a worker that has
never seen the configuration: --init plus the rebuild, cold (bootstrap,
apt) against from the registry; the rebuilds alone are printed too.
The two builders share this machine's disk, as two machines would not: each
builder's steps start after a pause (``--settle``, 60 s) in which nothing
runs. On an ext4 without a journal, as on these machines, writing a tree
within a minute or so of deleting one is several times slower (FACTS.md,
init_and_enter.py), and builder 1's rebuild ends by deleting its build tree:
without the pause, builder 2's restore would pay for builder 1's deletions.
Run as root: ``.venv/bin/python benchmarks/farm.py [--runs 3] [--settle 60]``.
Needs the docker-registry package (.ci/install installs it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SUITE = "trixie"
SID_SOURCES = ["--config-opts", "source_suites=[sid]", "--config-opts",
               "apt_options=[Acquire::Check-Valid-Until=false]"]


def builder(top: Path, name: str, url: str, push: bool, *args: str) -> list[str]:
    return [sys.executable, "-m", "deb_mock", "-r", f"{SUITE}-amd64", "--json",
            "--config-opts", f"basedir={top}/{name}/roots", "--config-opts", f"cache_topdir={top}/{name}/cache",
            "--plugin-option", f"apt_cache:dir={top}/apt-cache", "--remote-cache", url,
            *(["--remote-cache-push"] if push else []), *args]


def fetch_hello(top: Path, url: str) -> Path:
    """hello's source, fetched by a warm-up builder (which also fills the shared apt cache)."""
    out = top / "warm-up-result"
    timed(builder(top, "warm-up", url, False, *SID_SOURCES, "--resultdir", str(out), "--disable-plugin", "lintian",
                  "--rebuild", "hello/sid"))
    argv = [a for a in builder(top, "warm-up", url, False, "--print-root-path") if a != "--json"]
    root = Path(subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()).parent
    fetched = next((root / "sources").rglob("hello_*.dsc"))
    source = top / "src"
    source.mkdir()
    for file in fetched.parent.iterdir():
        shutil.copy2(file, source)
    return source / fetched.name


def timed(argv: list[str]) -> tuple[float, dict[str, Any]]:
    start = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    data = json.loads(result.stdout or "{}")
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return elapsed, data


def start_registry(top: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("docker-registry")
    if not binary:
        sys.exit("docker-registry is not installed (apt-get install docker-registry)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = top / "registry.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                      f"    rootdirectory: {top / 'registry'}\nhttp:\n  addr: 127.0.0.1:{port}\n")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"oci://127.0.0.1:{port}/deb-mock/bench"
        except OSError:
            time.sleep(0.1)
    process.kill()
    sys.exit("docker-registry did not start")


def spread(values: list[float]) -> str:
    return f"min {min(values):6.2f} s  median {statistics.median(values):6.2f} s  max {max(values):6.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--settle", type=float, default=60.0,
                        help="seconds of quiet before each builder's steps (another machine's disk)")
    args = parser.parse_args()
    # deb-mock as installed, its bytecode cached: an exported PYTHONDONTWRITEBYTECODE makes an editable
    # install compile ~50 modules on every start (50 ms no user pays)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    top = Path(tempfile.mkdtemp(prefix="deb-mock-farm-", dir="/var/tmp"))
    registry, url = start_registry(top)
    cold: list[float] = []
    pulled: list[float] = []
    hello_cold: list[float] = []
    hello_pulled: list[float] = []
    moved: dict[str, int] = {}
    stages: dict[str, list[float]] = {}
    try:
        # the warm-up fetches hello and fills the shared apt cache, so no run measures the archive's speed
        dsc = fetch_hello(top, url + "warmup")
        for run in range(args.runs):
            tag = f"run{run}"
            repository = url + tag  # a fresh repository per run: builder 1 is cold for the registry too
            first = (top, f"{tag}-1", repository, True)
            second = (top, f"{tag}-2", repository, False)
            build = ("--disable-plugin", "lintian", "--rebuild", str(dsc))
            time.sleep(args.settle)
            seconds, data = timed(builder(*first, "--init"))
            cold.append(seconds)
            moved["root pushed"] = _bytes(data, "root")
            seconds, data = timed(builder(*first, "--resultdir", str(top / f"{tag}-1-out"), *build))
            hello_cold.append(seconds)
            moved["build-deps pushed"] = _bytes(data, "build-deps")
            time.sleep(args.settle)
            seconds, data = timed(builder(*second, "--init"))
            durations = data.get("durations", {})
            if "bootstrap" in durations or "remote-cache-pull" not in durations:
                sys.exit(f"builder 2 did not restore from the registry: {durations}")
            pulled.append(seconds)
            moved["root pulled"] = _bytes(data, "root")
            seconds, data = timed(builder(*second, "--resultdir", str(top / f"{tag}-2-out"), *build))
            if "apt-build-dep" in data.get("durations", {}):
                sys.exit("builder 2 installed the build dependencies instead of pulling them")
            hello_pulled.append(seconds)
            for stage, value in data.get("durations", {}).items():
                stages.setdefault(stage, []).append(float(value))
            moved["build-deps pulled"] = _bytes(data, "build-deps")
    finally:
        registry.terminate()
        registry.wait()
        subprocess.run(["chattr", "-R", "-i", str(top)], check=False, capture_output=True)
        shutil.rmtree(top, ignore_errors=True)
    print(f"builder 1, cold --init (bootstrap, push):    {spread(cold)}")
    print(f"builder 2, --init from the registry (pull):  {spread(pulled)}")
    print(f"ratio ready, builder 2 / builder 1 (median): {statistics.median(pulled) / statistics.median(cold):.2f}"
          "  (target <= 0.3)")
    print(f"builder 1, hello (apt, push):                {spread(hello_cold)}")
    print(f"builder 2, hello (layer from the registry):  {spread(hello_pulled)}")
    print(f"ratio rebuild alone, builder 2 / builder 1:  "
          f"{statistics.median(hello_pulled) / statistics.median(hello_cold):.2f}")
    whole_cold = [a + b for a, b in zip(cold, hello_cold, strict=True)]
    whole_pulled = [a + b for a, b in zip(pulled, hello_pulled, strict=True)]
    print(f"builder 1, hello from nothing (init+build): {spread(whole_cold)}")
    print(f"builder 2, hello from nothing (init+build): {spread(whole_pulled)}")
    print(f"ratio hello from nothing, 2 / 1 (median):   "
          f"{statistics.median(whole_pulled) / statistics.median(whole_cold):.2f}  (target <= 0.5)")
    print("builder 2's hello, stage medians: "
          + ", ".join(f"{stage} {statistics.median(values):.2f}" for stage, values in stages.items()))
    print("bytes: " + ", ".join(f"{what} {count:,}" for what, count in moved.items()))


def _bytes(data: dict[str, Any], kind: str) -> int:
    return int(data.get("remote_cache", {}).get(kind, {}).get("bytes", 0))


if __name__ == "__main__":
    main()
