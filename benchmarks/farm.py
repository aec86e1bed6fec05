#!/usr/bin/env python3
"""A second builder of a farm, ready from the registry, against a cold one: measured in one run.

Starts Debian's docker-registry on loopback and, per run, two builders with
their own base and cache directories (the apt cache shared, as on one
machine; a farm's builders would share it through apt-cacher-ng instead):

- builder 1: a cold ``--init`` (bootstrap) that pushes its root cache;
- builder 2: ``--init`` with an empty local cache, restored from the registry.

Prints min/median/max of each, the ratio (target <= 0.3) and the bytes
pushed and pulled. Run as root: ``.venv/bin/python benchmarks/farm.py [--runs 3]``.
Needs the docker-registry package (.ci/install installs it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITE = "trixie"


def builder(top: Path, name: str, url: str, push: bool, *args: str) -> list[str]:
    return [sys.executable, "-m", "deb_mock", "-r", f"{SUITE}-amd64", "--json",
            "--config-opts", f"basedir={top}/{name}/roots", "--config-opts", f"cache_topdir={top}/{name}/cache",
            "--plugin-option", f"apt_cache:dir={top}/apt-cache", "--remote-cache", url,
            *(["--remote-cache-push"] if push else []), *args]


def timed(argv: list[str]) -> tuple[float, dict[str, object]]:
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
    args = parser.parse_args()
    top = Path(tempfile.mkdtemp(prefix="deb-mock-farm-", dir="/var/tmp"))
    registry, url = start_registry(top)
    cold: list[float] = []
    pulled: list[float] = []
    pushed_bytes = pulled_bytes = 0
    try:
        # one bootstrap first fills the shared apt cache, so no run measures the archive's speed
        timed(builder(top, "warm-up", url, False, "--init"))
        for run in range(args.runs):
            tag = f"run{run}"
            repository = url + tag  # a fresh repository per run: builder 1 is cold for the registry too
            seconds, data = timed(builder(top, f"{tag}-1", repository, True, "--init"))
            cold.append(seconds)
            pushed_bytes = int(data.get("remote_cache", {}).get("bytes", 0))  # type: ignore[union-attr]
            seconds, data = timed(builder(top, f"{tag}-2", repository, False, "--init"))
            durations = data.get("durations", {})
            if "bootstrap" in durations or "remote-cache-pull" not in durations:  # type: ignore[operator]
                sys.exit(f"builder 2 did not restore from the registry: {durations}")
            pulled.append(seconds)
            pulled_bytes = int(data.get("remote_cache", {}).get("bytes", 0))  # type: ignore[union-attr]
    finally:
        registry.terminate()
        registry.wait()
        subprocess.run(["chattr", "-R", "-i", str(top)], check=False, capture_output=True)
        shutil.rmtree(top, ignore_errors=True)
    print(f"builder 1, cold --init (bootstrap, push):    {spread(cold)}")
    print(f"builder 2, --init from the registry (pull):  {spread(pulled)}")
    print(f"ratio builder 2 / builder 1 (median):        {statistics.median(pulled) / statistics.median(cold):.2f}"
          "  (target <= 0.3)")
    print(f"bytes pushed by builder 1: {pushed_bytes:,}; pulled by builder 2: {pulled_bytes:,}")


if __name__ == "__main__":
    main()
