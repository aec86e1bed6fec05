"""Root cache, apt cache, build-deps layers and snapshots, for real."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import ClassVar

import pytest

from tests.integration.conftest import DebMock
from tests.integration.debsrc import make_source

pytestmark = [pytest.mark.root, pytest.mark.network, pytest.mark.slow]
R = ("-r", "trixie-amd64")
#: a fingerprint of the root's file tree: every path with its type, mode, owner and content digest
TREE = ("find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \\) -prune -o "
        "-printf '%p %y %m %U:%G %l\\n' | sort | md5sum; "
        "find /etc /usr/share/doc /var/lib/dpkg -xdev -type f -print0 | sort -z | xargs -0 md5sum | md5sum")


def root_cache_files(dm: DebMock) -> tuple[Path, dict[str, object]]:
    directory = dm.basedir.parent / "cache" / "trixie-amd64" / "root_cache"
    meta_path = next(directory.glob("*.json"))
    return meta_path.with_name(meta_path.name.removesuffix(".json")), json.loads(meta_path.read_text())


def test_cold_init_saved_a_root_cache(dm: DebMock, trixie: dict[str, object]) -> None:
    tarball, meta = root_cache_files(dm)
    assert tarball.stat().st_size == meta["size"]
    digest = subprocess.run(["sha256sum", str(tarball)], capture_output=True, text=True).stdout.split()[0]
    assert digest == meta["sha256"]
    assert not list(tarball.parent.glob("*.tmp-*"))
    state = json.loads((dm.root_dir("trixie-amd64") / "state.json").read_text())
    assert state["base"]["content_id"] == meta["sha256"]


def test_init_from_root_cache_needs_no_network(dm: DebMock, trixie: dict[str, object]) -> None:
    U = (*R, "--uniqueext", "cached")
    result = dm.json(*U, "--offline", "--init")  # the network is cut: only loopback
    assert result["exit_code"] == 0, result
    assert "restore" in result["durations"] and "bootstrap" not in result["durations"]  # type: ignore[operator]
    log = (dm.root_dir("trixie-amd64-cached") / "result" / "root.log").read_text()
    assert "restored the base from the root cache" in log
    assert dm.ok(*U, "--offline", "--chroot", "cat /etc/debian_version").stdout.startswith("13")
    assert dm.ok(*U, "--chroot", "getent passwd build").stdout.startswith("build:x:1000:")
    dm.ok(*U, "--scrub=chroot")
    again = dm.json(*U, "--offline", "--init")
    assert again["exit_code"] == 0 and "bootstrap" not in again["durations"]  # type: ignore[operator]
    dm.ok(*U, "--scrub=chroot")


class _CountingProxy(http.server.BaseHTTPRequestHandler):
    """A forward HTTP proxy on loopback (what apt-cacher-ng is to apt), counting what apt asks of it."""

    protocol_version = "HTTP/1.1"
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("if-modified-since", "range", "if-range")}
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                    urllib.request.Request(self.path, headers=headers), timeout=60) as upstream:
                status, reply, body = upstream.status, upstream.headers, upstream.read()
        except urllib.error.HTTPError as exc:
            status, reply, body = exc.code, exc.headers, exc.read()
        self.send_response(status)
        for key in ("Content-Type", "Last-Modified", "Content-Range"):
            if reply.get(key):
                self.send_header(key, reply[key])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        return


def test_a_proxy_reaches_every_apt_run_and_shares_the_root_cache(dm: DebMock, trixie: dict[str, object],
                                                                tmp_path: Path) -> None:
    """apt_proxy is the builder's, not the base's: the root cache made without it is restored (no bootstrap),
    the base holds no proxy setting, and apt's runs after the bootstrap go through the proxy."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = tmp_path / "proxied.yaml"
        config.write_text(f"templates: [trixie-amd64]\nname: trixie-amd64\n"
                          f"apt_proxy: http://127.0.0.1:{server.server_address[1]}\n")
        P = ("-r", str(config), "--uniqueext", "proxied")
        init = dm.json(*P, "--init")
        assert init["exit_code"] == 0, init
        assert "restore" in init["durations"] and "bootstrap" not in init["durations"]  # type: ignore[operator]
        assert dm.ok(*P, "--chroot", "grep -rl Proxy /etc/apt/ || echo none").stdout.strip() == "none"
        before = len(_CountingProxy.requests)
        dm.ok(*P, "--update")
        asked = _CountingProxy.requests[before:]
        assert any("/dists/" in path for path in asked), asked  # apt-get update went through the proxy
    finally:
        server.shutdown()
        server.server_close()
        dm.ok("-r", str(tmp_path / "proxied.yaml"), "--uniqueext", "proxied", "--scrub=chroot")


def test_corrupted_root_cache_is_detected_and_rebuilt(dm: DebMock, trixie: dict[str, object]) -> None:
    tarball, meta = root_cache_files(dm)
    data = bytearray(tarball.read_bytes())
    data[len(data) // 3] ^= 0x55
    tarball.write_bytes(bytes(data))
    U = (*R, "--uniqueext", "corrupt")
    apt_cache = dm.basedir.parent / "cache" / "apt-cache" / "trixie-amd64"
    cached = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in apt_cache.glob("*.deb")}
    mounts = Path("/proc/self/mountinfo").read_text()
    result = dm.json(*U, "--init")
    assert result["exit_code"] == 0, result
    assert "corrupted" in str(result["_stderr"])  # a warning: shown even with --json
    assert "bootstrap" in result["durations"]  # type: ignore[operator]
    # mmdebstrap installed from the apt cache, mounted in the run's namespace: nothing downloaded again,
    # copied or deleted, and no mount on the host
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in apt_cache.glob("*.deb")} == cached
    assert Path("/proc/self/mountinfo").read_text() == mounts
    assert not list((dm.root_dir("trixie-amd64-corrupt") / "base" / "var/cache/apt/archives").glob("*.deb"))
    tarball, fresh = root_cache_files(dm)
    assert fresh["sha256"] != meta["sha256"] or fresh["created"] != meta["created"]
    digest = subprocess.run(["sha256sum", str(tarball)], capture_output=True, text=True).stdout.split()[0]
    assert digest == fresh["sha256"]
    dm.ok(*U, "--scrub=chroot")


def test_snapshot_rollback_restores_the_exact_tree(dm: DebMock, trixie: dict[str, object]) -> None:
    U = (*R, "--uniqueext", "snap")
    dm.ok(*U, "--init")
    dm.ok(*U, "--chroot", "echo one > /etc/one; rm /etc/issue")
    at_snapshot = dm.ok(*U, "--chroot", TREE).stdout
    dm.ok(*U, "--snapshot", "first")
    dm.ok(*U, "--install", "hello")
    dm.ok(*U, "--chroot", "echo two > /etc/one; rm -r /usr/share/doc/bash; echo new > /etc/two")
    dm.ok(*U, "--snapshot", "second")
    dm.ok(*U, "--chroot", "rm /etc/two")
    listing = dm.json(*U, "--list-snapshots")
    assert [s["name"] for s in listing["snapshots"]] == ["first", "second"]  # type: ignore[union-attr]
    refused = dm.run(*U, "--remove-snapshot", "first")
    assert refused.returncode == 5 and "second" in refused.stderr
    dm.ok(*U, "--rollback-to", "first")
    assert dm.ok(*U, "--chroot", TREE).stdout == at_snapshot
    assert dm.run(*U, "--chroot", "hello").returncode == 127
    assert [s["name"] for s in dm.json(*U, "--list-snapshots")["snapshots"]] == ["first"]  # type: ignore[union-attr]
    dm.ok(*U, "--chroot", "touch /etc/later")
    dm.ok(*U, "--clean")  # back to the snapshot, not to the base
    assert dm.ok(*U, "--chroot", "cat /etc/one").stdout == "one\n"
    dm.ok(*U, "--remove-snapshot", "first")
    assert dm.run(*U, "--chroot", "test -e /etc/one").returncode == 1
    dm.ok(*U, "--scrub=chroot")


def test_build_deps_layer_is_reused_and_offline_rebuild_works(dm: DebMock, trixie: dict[str, object],
                                                              tmp_path: Path) -> None:
    dsc = make_source(tmp_path, "dm-deps", build_depends="hello, pv", build="\thello; pv --version | head -1")
    first = dm.json(*R, "--resultdir", str(tmp_path / "first"), "--rebuild", str(dsc))
    assert first["exit_code"] == 0, first
    assert "apt-build-dep" in first["durations"]  # type: ignore[operator]
    second = dm.json(*R, "--resultdir", str(tmp_path / "second"), "--rebuild", str(dsc))
    assert second["exit_code"] == 0, second
    assert "apt-build-dep" not in second["durations"] and "apt-install" not in second["durations"]  # type: ignore
    assert "reused: no apt run" in (tmp_path / "second" / "root.log").read_text()
    assert "Hello, world!" in (tmp_path / "second" / "build.log").read_text()
    # offline: the layer (or the apt cache) serves, with the network unreachable
    offline = dm.json(*R, "--offline", "--resultdir", str(tmp_path / "offline"), "--rebuild", str(dsc))
    assert offline["exit_code"] == 0, offline
    dm.ok(*R, "--scrub=build-deps-cache")
    assert not (dm.basedir.parent / "cache" / "trixie-amd64" / "source-trees").exists()
    again = dm.json(*R, "--offline", "--resultdir", str(tmp_path / "apt-cache"), "--rebuild", str(dsc))
    assert again["exit_code"] == 0, again  # installed from the shared apt cache alone
    assert "apt-build-dep" in again["durations"]  # type: ignore[operator]
    apt_cache = dm.basedir.parent / "cache" / "apt-cache" / "trixie-amd64"
    assert list(apt_cache.glob("hello_*.deb")) and list(apt_cache.glob("pv_*.deb"))


def test_stale_lists_are_refreshed_once_in_the_base(dm: DebMock, trixie: dict[str, object],
                                                    tmp_path: Path) -> None:
    U = (*R, "--uniqueext", "lists")
    dm.ok(*U, "--init")
    state_path = dm.root_dir("trixie-amd64-lists") / "state.json"
    state = json.loads(state_path.read_text())
    state["base"]["lists_updated"] = time.time() - 7200  # two hours old: older than apt_lists_max_age
    state_path.write_text(json.dumps(state))
    dsc = make_source(tmp_path, "dm-lists", build_depends="hello", build="\thello")
    first = dm.json(*U, "--resultdir", str(tmp_path / "first"), "--rebuild", str(dsc))
    assert first["exit_code"] == 0 and "apt-update" in first["durations"], first  # type: ignore[operator]
    refreshed = json.loads(state_path.read_text())["base"]["lists_updated"]
    assert time.time() - refreshed < 600
    # the base's lists are current now: the next build runs no apt at all, not even a resolution
    second = dm.json(*U, "--resultdir", str(tmp_path / "second"), "--rebuild", str(dsc))
    assert second["exit_code"] == 0, second
    assert not [s for s in second["durations"] if s.startswith("apt")], second  # type: ignore[union-attr]
    assert "reused: no apt run" in (tmp_path / "second" / "root.log").read_text()
    dm.ok(*U, "--scrub=chroot")


def test_build_deps_layers_are_leased_scrubbed_and_expired(dm: DebMock, trixie: dict[str, object],
                                                          tmp_path: Path) -> None:
    U = (*R, "--uniqueext", "lease")  # the builds; the scrubs run from the main root, which is not busy
    layers = dm.basedir.parent / "cache" / "trixie-amd64" / "build-deps"
    quick = make_source(tmp_path, "dm-lease-a", build_depends="hello", build="\thello")
    slow = make_source(tmp_path, "dm-lease-b", build_depends="hello", build="\thello\n\tsleep 20")
    dm.ok(*R, "--scrub=build-deps-cache")
    dm.ok(*U, "--resultdir", str(tmp_path / "a1"), "--rebuild", str(quick))
    (layer,) = _layers(layers)
    # a build standing on the layer keeps it: a scrub meanwhile neither waits for it nor pulls it away
    process = dm.popen(*U, "--resultdir", str(tmp_path / "b"), "--rebuild", str(slow))
    deadline = time.monotonic() + 300
    while "reused: no apt run" not in _text(tmp_path / "b" / "root.log") and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        time.sleep(0.2)
    started = time.monotonic()
    scrub = dm.ok(*R, "--scrub=build-deps-cache")
    assert time.monotonic() - started < 10 and "in use by running builds" in scrub.stderr
    assert layer.is_dir() and not layer.with_name(f"{layer.name}.json").exists()
    assert process.wait(timeout=300) == 0, process.stderr.read() if process.stderr else ""
    assert "Hello, world!" in (tmp_path / "b" / "build.log").read_text()
    # no longer handed out: the next build installs again and saves the layer anew
    again = dm.json(*U, "--resultdir", str(tmp_path / "a2"), "--rebuild", str(quick))
    assert again["exit_code"] == 0 and "apt-build-dep" in again["durations"], again  # type: ignore[operator]
    assert layer.with_name(f"{layer.name}.json").is_file()
    # unused for longer than build_deps_max_age_days: deleted when another layer is saved
    month_ago = time.time() - 30 * 86400
    os.utime(layer.with_name(f"{layer.name}.json"), (month_ago, month_ago))
    other = make_source(tmp_path, "dm-lease-c", build_depends="pv", build="\tpv --version")
    dm.ok(*U, "--resultdir", str(tmp_path / "c"), "--rebuild", str(other))
    remaining = _layers(layers)
    assert len(remaining) == 1 and remaining[0] != layer and not layer.exists()
    dm.ok(*U, "--scrub=chroot")


def _layers(directory: Path) -> list[Path]:
    """The layer directories of a build-deps cache (not its aliases)."""
    return [p for p in directory.iterdir() if p.is_dir() and p.name != "aliases"]


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def test_eight_concurrent_uniqueext_rebuilds_share_the_caches(dm: DebMock, trixie: dict[str, object],
                                                              tmp_path: Path) -> None:
    dsc = make_source(tmp_path, "dm-par", build_depends="hello", build="\thello")
    processes = [dm.popen(*R, "--uniqueext", f"par{n}", "--resultdir", str(tmp_path / f"r{n}"), "--rebuild",
                          str(dsc)) for n in range(8)]
    started = time.monotonic()
    outcomes = [(p.wait(timeout=1800), p.stderr.read() if p.stderr else "") for p in processes]
    assert all(code == 0 for code, _ in outcomes), outcomes
    assert time.monotonic() - started < 1800
    for n in range(8):
        assert (tmp_path / f"r{n}" / "dm-par_1.0_all.deb").is_file()
    tarball, meta = root_cache_files(dm)
    digest = subprocess.run(["sha256sum", str(tarball)], capture_output=True, text=True).stdout.split()[0]
    assert digest == meta["sha256"]
    apt_cache = dm.basedir.parent / "cache" / "apt-cache" / "trixie-amd64"
    assert not list((apt_cache / "partial").iterdir())
    for n in range(8):
        dm.ok(*R, "--uniqueext", f"par{n}", "--scrub=chroot")


def test_ccache_hits_across_versions(dm: DebMock, trixie: dict[str, object], tmp_path: Path) -> None:
    compile_c = ("\tprintf 'int square(int x) { return x * x; }\\n' > square.c\n"
                 "\tgcc -O2 -c square.c -o square.o")
    hits = []
    for version in ("1.0", "1.1"):
        dsc = make_source(tmp_path, "dm-ccache", version=version, build=compile_c)
        out = tmp_path / version
        dm.ok(*R, "--enable-plugin", "ccache", "--resultdir", str(out), "--rebuild", str(dsc))
        stats = (out / "ccache.log").read_text()
        hits.append(sum(int(m) for m in re.findall(r"^\s*Hits:\s+(\d+)", stats, re.MULTILINE)))
    assert hits[0] == 0 and hits[1] > 0, hits  # 1.1 builds in another directory and still hits
    assert (dm.basedir.parent / "cache" / "ccache" / "dm-ccache").is_dir()
    dm.ok(*R, "--scrub=c-cache")
    assert not (dm.basedir.parent / "cache" / "ccache").exists()


def test_tmpfs_upper_builds_in_ram_without_a_host_mount(dm: DebMock, trixie: dict[str, object],
                                                        tmp_path: Path) -> None:
    dsc = make_source(tmp_path, "dm-ram", build="\thead -c 1000000 /dev/zero > big.bin\n\tsleep 4")
    before = Path("/proc/self/mounts").read_text()
    process = dm.popen(*R, "--enable-plugin", "tmpfs", "--plugin-option", "tmpfs:mounts=[]",
                       "--plugin-option", "tmpfs:upper=true", "--plugin-option", "tmpfs:upper_size=3G",
                       "--resultdir", str(tmp_path / "out"), "--rebuild", str(dsc))
    scratch = dm.root_dir("trixie-amd64") / "scratch"
    seen_tmpfs = ""
    streamed = False
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        # build.log grows while the build runs: a worker can follow it (the build sleeps after its head)
        log = tmp_path / "out" / "build.log"
        streamed = streamed or (log.is_file() and "head -c 1000000" in log.read_text(errors="replace"))
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and b"#session" in (entry / "cmdline").read_bytes():
                    for line in (entry / "mountinfo").read_text().splitlines():
                        if f" {scratch} " in line and " tmpfs " in line:
                            seen_tmpfs = line
            except OSError:
                continue
        # the build tree is in RAM: nothing of it reaches the directory on disk
        assert not _files_named(scratch, "big.bin")
        time.sleep(0.2)
    assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""
    assert "size=3145728k" in seen_tmpfs, seen_tmpfs
    assert streamed, "build.log was not written while the build ran"
    assert Path("/proc/self/mounts").read_text() == before
    assert (tmp_path / "out" / "dm-ram_1.0_all.deb").is_file()
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and _is_keeper(p)]


def _files_named(top: Path, name: str) -> list[str]:
    """Every file called `name` under `top`, walked while the build changes the tree: os.walk
    passes over a directory that goes away under it (pathlib's rglob raises)."""
    return [os.path.join(where, name) for where, _dirs, files in os.walk(top) if name in files]


def _is_keeper(proc: Path) -> bool:
    try:
        return b"#session" in (proc / "cmdline").read_bytes()
    except OSError:
        return False
