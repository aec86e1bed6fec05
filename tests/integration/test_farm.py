"""A build farm for real: Buildbot (a master, two workers) over deb-mock, an OCI registry and apt-cacher-ng.

Everything listens on loopback. Each worker has its own roots and caches;
they share the registry (remote_cache, with push) and apt-cacher-ng
(apt_proxy). contrib/buildbot's factory builds hello from bookworm:

1. cold: hello on w1 and a package that fails to build on w2, started
   together. Their `--init` steps take the master lock per configuration in
   turn: exactly one worker bootstraps (and pushes its root cache), the other
   restores the root from the registry. hello: SUCCESS (its build-deps layer
   pushed), the failure: FAILURE with result.json's failure "package".
2. warm: hello on w2, which pulls the build-deps layer (no apt run) and gives
   the same .debs as w1, byte for byte; its source came through apt-cacher-ng,
   which had it from w1's download (a hit).
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import REPO, DebMock, wait_for_port
from tests.integration.debsrc import make_source

pytestmark = [pytest.mark.root, pytest.mark.network, pytest.mark.slow]
CONFIG = "bookworm-amd64"
MASTER_CFG = """\
import sys
sys.path.insert(0, {contrib!r})
from buildbot.plugins import changes, schedulers, util, worker
from debmock_buildbot import deb_mock_factory

DEB_MOCK = [{python!r}, "-m", "deb_mock"]
c = BuildmasterConfig = {{}}
c["workers"] = [worker.Worker("w1", "pw1"), worker.Worker("w2", "pw2")]
c["protocols"] = {{"pb": {{"port": "tcp:{port}:interface=127.0.0.1"}}}}
c["change_source"] = [changes.PBChangeSource(user="change", passwd="changepw")]
c["builders"] = [
    util.BuilderConfig(name="hello-w1", workernames=["w1"], factory=deb_mock_factory({config!r}, "hello", DEB_MOCK)),
    util.BuilderConfig(name="hello-w2", workernames=["w2"], factory=deb_mock_factory({config!r}, "hello", DEB_MOCK)),
    util.BuilderConfig(name="fails-w2", workernames=["w2"],
                       factory=deb_mock_factory({config!r}, util.Property("dsc"), DEB_MOCK)),
]
c["schedulers"] = [
    schedulers.AnyBranchScheduler(name="cold", change_filter=util.ChangeFilter(branch="cold"), treeStableTimer=None,
                                  builderNames=["hello-w1", "fails-w2"]),
    schedulers.AnyBranchScheduler(name="warm", change_filter=util.ChangeFilter(branch="warm"), treeStableTimer=None,
                                  builderNames=["hello-w2"]),
]
c["db"] = {{"db_url": "sqlite:///state.sqlite"}}
c["logCompressionMethod"] = "raw"
c["buildbotNetUsageData"] = None
c["title"] = "deb-mock"
c["buildbotURL"] = "http://127.0.0.1/"
"""
#: apt-cacher-ng as a plain caching proxy: no remapping of archives to its own mirror lists
ACNG_CONF = """\
CacheDir: {top}/cache
LogDir: {top}/log
SupportDir: /usr/lib/apt-cacher-ng
Port: {port}
BindAddress: 127.0.0.1
SocketPath: {top}/socket
PidFile: {top}/pid
ForeGround: 1
"""


def _tool(name: str) -> str:
    found = Path(sys.executable).parent / name
    assert found.exists() or shutil.which(name), f"{name} is not installed (the test extras install it)"
    return str(found) if found.exists() else str(shutil.which(name))


@pytest.fixture
def apt_cacher(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """apt-cacher-ng on a free loopback port below 32768 (3.7's port parser takes no higher one); its log dir."""
    binary = shutil.which("apt-cacher-ng", path="/usr/sbin:/sbin")
    assert binary, "apt-cacher-ng is not installed (.ci/install installs it)"
    while True:
        port = random.randint(20000, 32767)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
                break
            except OSError:
                continue
    top = tmp_path / "acng"
    for directory in ("conf", "cache", "log"):
        (top / directory).mkdir(parents=True)
    (top / "conf" / "acng.conf").write_text(ACNG_CONF.format(top=top, port=port))
    process = subprocess.Popen([binary, "-c", str(top / "conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process, "apt-cacher-ng")
        yield port, top / "log"
    finally:
        process.terminate()
        process.wait(timeout=30)


def _worker_env(dm: DebMock, name: str, proxy_port: int, registry_url: str) -> dict[str, str]:
    """A worker's own deb-mock: its roots and caches, the farm's proxy and registry (a user config)."""
    top = dm.basedir.parent / f"farm-{name}"
    (top / "config" / "deb-mock").mkdir(parents=True)
    (top / "config" / "deb-mock" / "config.yaml").write_text(
        f"basedir: {top / 'roots'}\ncache_topdir: {top / 'cache'}\n"
        f"apt_proxy: http://127.0.0.1:{proxy_port}\n"
        f"remote_cache:\n  url: {registry_url}\n  push: true\n"
        "plugins:\n  lintian:\n    enabled: false\n")
    return {**dm.env, "XDG_CONFIG_HOME": str(top / "config"), "XDG_CACHE_HOME": str(top / "xdg-cache")}


@pytest.fixture
def farm(dm: DebMock, registry: tuple[str, Path], apt_cacher: tuple[int, Path],
         tmp_path: Path) -> Iterator[tuple[Path, dict[str, dict[str, str]]]]:
    """A Buildbot master and workers w1, w2 (each with its own deb-mock), stopped and scrubbed afterwards."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    master = tmp_path / "master"
    buildbot, worker = _tool("buildbot"), _tool("buildbot-worker")
    subprocess.run([buildbot, "create-master", "-q", str(master)], check=True, capture_output=True)
    (master / "master.cfg").write_text(MASTER_CFG.format(contrib=str(REPO / "contrib" / "buildbot"),
                                                         python=sys.executable, port=port, config=CONFIG))
    envs = {name: _worker_env(dm, name, apt_cacher[0], registry[0]) for name in ("w1", "w2")}
    started: list[tuple[list[str], dict[str, str] | None]] = []
    try:
        subprocess.run([buildbot, "start", str(master)], check=True, capture_output=True, timeout=120)
        started.append(([buildbot, "stop", str(master)], None))
        for name, env in envs.items():
            directory = tmp_path / name
            subprocess.run([worker, "create-worker", "-q", str(directory), f"127.0.0.1:{port}", name,
                            f"pw{name[-1]}"], check=True, capture_output=True)
            subprocess.run([worker, "start", str(directory)], check=True, capture_output=True, env=env, timeout=120)
            started.append(([worker, "stop", str(directory)], env))
        (master / "port").write_text(str(port))
        yield master, envs
    finally:
        for command, _ in reversed(started):
            subprocess.run(command, check=False, capture_output=True, timeout=120)
        for name, env in envs.items():
            subprocess.run(dm.command("-r", CONFIG, "--uniqueext", name, "--scrub=all"), env=env, check=False,
                           capture_output=True, timeout=300)


def _send_change(master: Path, branch: str, dsc: Path | None = None) -> None:
    subprocess.run([_tool("buildbot"), "sendchange", f"--master=127.0.0.1:{(master / 'port').read_text()}",
                    "--auth=change:changepw", "--who=test", f"--branch={branch}",
                    *([f"--property=dsc:{dsc}"] if dsc else []), "debian/changelog"],
                   check=True, capture_output=True, timeout=60)


def _finished_builds(master: Path, count: int, timeout: float) -> dict[str, tuple[int, int]]:
    """builder name -> (build number, Buildbot result), once ``count`` builds have finished."""
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(master / "state.sqlite") as db:
            rows = db.execute("SELECT builders.name, builds.number, builds.results FROM builds "
                              "JOIN builders ON builds.builderid = builders.id WHERE builds.complete_at IS NOT NULL"
                              ).fetchall()
        if len(rows) >= count:
            return {name: (number, results) for name, number, results in rows}
        assert time.monotonic() < deadline, f"only {len(rows)} of {count} builds finished: {rows}"
        time.sleep(2)


def _init_result(env: dict[str, str], name: str) -> dict[str, object]:
    """result.json of a worker's `--init` step (written to the root's own result directory)."""
    roots = Path(env["XDG_CONFIG_HOME"]).parent / "roots"
    data = json.loads((roots / f"{CONFIG}-{name}" / "result" / "result.json").read_text())
    assert isinstance(data, dict) and data["mode"] == "init", data
    return data


def _proxy_hits(log_dir: Path) -> set[str]:
    """Files apt-cacher-ng served more often than it fetched them (its transfer log: I in, O out)."""
    fetched: dict[str, int] = {}
    served: dict[str, int] = {}
    for line in (log_dir / "apt-cacher.log").read_text().splitlines():
        fields = line.split("|")
        if len(fields) >= 5 and fields[1] in ("I", "O"):
            counter = fetched if fields[1] == "I" else served
            counter[fields[4]] = counter.get(fields[4], 0) + 1
    return {path for path, times in served.items() if times > fetched.get(path, 0)}


def test_a_farm_bootstraps_once_and_shares_roots_layers_and_downloads(
        farm: tuple[Path, dict[str, dict[str, str]]], apt_cacher: tuple[int, Path], tmp_path: Path) -> None:
    master, envs = farm
    bad = make_source(tmp_path / "src", "dm-farm-fails", build="\techo 'BUILD GOES WRONG'; exit 3")
    _send_change(master, "cold", bad)
    cold = _finished_builds(master, 2, timeout=1200)
    assert {name: result for name, (_, result) in cold.items()} == {"hello-w1": 0, "fails-w2": 2}, cold

    # one bootstrap: the lock made the second --init wait, and it restored what the first pushed
    inits = {name: _init_result(env, name) for name, env in envs.items()}
    bootstrapped = [name for name, result in inits.items() if "bootstrap" in result["durations"]]  # type: ignore[operator]
    assert len(bootstrapped) == 1, inits
    restored = inits["w2" if bootstrapped == ["w1"] else "w1"]
    assert "remote-cache-pull" in restored["durations"], restored  # type: ignore[operator]
    assert "waiting for lock <MasterLock(deb-mock-init-bookworm-amd64" in (master / "twistd.log").read_text()

    _send_change(master, "warm")
    builds = _finished_builds(master, 3, timeout=900)
    assert builds["hello-w2"][1] == 0, builds
    uploaded = {name: master / "results" / name / str(number) for name, (number, _) in builds.items()}
    results = {name: json.loads((uploaded[name] / "result.json").read_text()) for name in uploaded}
    assert results["fails-w2"]["failure"] == "package", results["fails-w2"]
    pushed = results["hello-w1"]["remote_cache"]["build-deps"]["pushed"]
    assert results["hello-w2"]["remote_cache"]["build-deps"]["pulled"] == pushed, results["hello-w2"]
    assert "apt-build-dep" in results["hello-w1"]["durations"]
    assert "apt-build-dep" not in results["hello-w2"]["durations"], results["hello-w2"]["durations"]
    assert "pulled from" in (uploaded["hello-w2"] / "root.log").read_text()
    debs = sorted(p.name for p in uploaded["hello-w1"].glob("*.deb"))
    assert any(name.startswith("hello_") for name in debs), debs
    for name in debs:
        assert (uploaded["hello-w1"] / name).read_bytes() == (uploaded["hello-w2"] / name).read_bytes(), name

    hits = _proxy_hits(apt_cacher[1])
    assert any(path.endswith(".dsc") and "/hello_" in path for path in hits), hits
    with sqlite3.connect(master / "state.sqlite") as db:
        logs = {name for (name,) in db.execute("SELECT logs.name FROM logs JOIN steps ON logs.stepid = steps.id "
                                                "WHERE steps.name = 'rebuild' AND logs.num_lines > 0")}
    assert {"stdio", "build.log", "root.log"} <= logs, logs
