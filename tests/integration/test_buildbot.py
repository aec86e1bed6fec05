"""deb-mock under Buildbot for real: a master and two workers on loopback, contrib/buildbot's factory.

Two builders (one per worker) build the same source from one change: both
succeed with the same .deb, their first steps (--init) never overlap (the
master lock per configuration), build.log is streamed into the step's logs
and the result directory is uploaded. A third builder's package fails to
build: FAILURE, with result.json's failure "package" uploaded.
"""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import REPO, DebMock
from tests.integration.debsrc import make_source

pytestmark = [pytest.mark.root, pytest.mark.network, pytest.mark.slow]
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
    util.BuilderConfig(name=name, workernames=[worker_name],
                       factory=deb_mock_factory("trixie-amd64", util.Property("dsc"), DEB_MOCK))
    for name, worker_name in (("ok-w1", "w1"), ("ok-w2", "w2"), ("fails", "w1"))
]
c["schedulers"] = [
    schedulers.AnyBranchScheduler(name="ok", change_filter=util.ChangeFilter(branch="ok"), treeStableTimer=None,
                                  builderNames=["ok-w1", "ok-w2"]),
    schedulers.AnyBranchScheduler(name="fails", change_filter=util.ChangeFilter(branch="fails"),
                                  treeStableTimer=None, builderNames=["fails"]),
]
c["db"] = {{"db_url": "sqlite:///state.sqlite"}}
c["buildbotNetUsageData"] = None
c["title"] = "deb-mock"
c["buildbotURL"] = "http://127.0.0.1/"
"""


def _tool(name: str) -> str:
    found = Path(sys.executable).parent / name
    assert found.exists() or shutil.which(name), f"{name} is not installed (the test extras install it)"
    return str(found) if found.exists() else str(shutil.which(name))


@pytest.fixture
def farm(dm: DebMock, trixie: dict[str, object], tmp_path: Path) -> Iterator[Path]:
    """A Buildbot master and workers w1, w2 (deb-mock's session environment), stopped afterwards."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    master = tmp_path / "master"
    buildbot, worker = _tool("buildbot"), _tool("buildbot-worker")
    subprocess.run([buildbot, "create-master", "-q", str(master)], check=True, capture_output=True)
    (master / "master.cfg").write_text(MASTER_CFG.format(contrib=str(REPO / "contrib" / "buildbot"),
                                                         python=sys.executable, port=port))
    started: list[list[str]] = []
    try:
        subprocess.run([buildbot, "start", str(master)], check=True, capture_output=True, timeout=120)
        started.append([buildbot, "stop", str(master)])
        for name in ("w1", "w2"):
            directory = tmp_path / name
            subprocess.run([worker, "create-worker", "-q", str(directory), f"127.0.0.1:{port}", name,
                            f"pw{name[-1]}"], check=True, capture_output=True)
            subprocess.run([worker, "start", str(directory)], check=True, capture_output=True, env=dm.env,
                           timeout=120)
            started.append([worker, "stop", str(directory)])
        (master / "port").write_text(str(port))
        yield master
    finally:
        for command in reversed(started):
            subprocess.run(command, check=False, capture_output=True, timeout=120)
        for name in ("w1", "w2"):
            dm.run("-r", "trixie-amd64", "--uniqueext", name, "--scrub=chroot")


def _send_change(master: Path, branch: str, dsc: Path) -> None:
    subprocess.run([_tool("buildbot"), "sendchange", f"--master=127.0.0.1:{(master / 'port').read_text()}",
                    "--auth=change:changepw", "--who=test", f"--branch={branch}", f"--property=dsc:{dsc}",
                    "debian/changelog"], check=True, capture_output=True, timeout=60)


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


def test_buildbot_runs_deb_mock_on_two_workers(farm: Path, tmp_path: Path) -> None:
    good = make_source(tmp_path / "src", "dm-bb", build="\techo building dm-bb")
    bad = make_source(tmp_path / "src", "dm-bb-fails", build="\techo 'BUILD GOES WRONG'; exit 3")
    _send_change(farm, "ok", good)
    _send_change(farm, "fails", bad)
    builds = _finished_builds(farm, 3, timeout=900)
    assert {name: result for name, (_, result) in builds.items()} == {"ok-w1": 0, "ok-w2": 0, "fails": 2}, builds
    uploaded = {name: farm / "results" / name / str(number) for name, (number, _) in builds.items()}
    debs = [(uploaded[name] / "dm-bb_1.0_all.deb").read_bytes() for name in ("ok-w1", "ok-w2")]
    assert debs[0] == debs[1]
    assert '"failure": "package"' in (uploaded["fails"] / "result.json").read_text()
    with sqlite3.connect(farm / "state.sqlite") as db:
        inits = db.execute("SELECT started_at, complete_at FROM steps WHERE name = 'init' ORDER BY started_at"
                           ).fetchall()
        logs = {name for (name,) in db.execute("SELECT logs.name FROM logs JOIN steps ON logs.stepid = steps.id "
                                                "WHERE steps.name = 'rebuild' AND logs.num_lines > 0")}
    # one --init at a time per configuration: the others waited for the master lock, and ended one by one
    assert len(inits) == 3 and len({end for _, end in inits}) == 3, inits
    assert "waiting for lock <MasterLock(deb-mock-init-trixie-amd64" in (farm / "twistd.log").read_text()
    assert {"stdio", "build.log", "root.log"} <= logs, logs
