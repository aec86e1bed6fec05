"""Integration fixtures: real roots bootstrapped with mmdebstrap, real namespaces.

Every test here runs deb-mock as a user would (``python -m deb_mock ...`` in a
subprocess) against roots under one temporary base directory per session,
configured through a user config file in a private XDG_CONFIG_HOME, so the
host's /var/lib/deb-mock is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def host_mounts() -> list[str]:
    """The host's mount table (lines of /proc/self/mounts)."""
    return Path("/proc/self/mounts").read_text(encoding="utf-8").splitlines()


@dataclass
class DebMock:
    """Runs deb-mock in a subprocess with the session's configuration."""

    basedir: Path
    env: dict[str, str]

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "deb_mock", *args]

    def run(self, *args: str, timeout: float = 900, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), env=self.env, capture_output=True, text=True, errors="replace",
                              timeout=timeout, input=input, check=False)

    def ok(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        result = self.run(*args, timeout=timeout)
        assert result.returncode == 0, f"deb-mock {' '.join(args)} -> {result.returncode}\n{result.stderr}"
        return result

    def json(self, *args: str, timeout: float = 900) -> dict[str, object]:
        result = self.run("--json", *args, timeout=timeout)
        data = json.loads(result.stdout)
        assert isinstance(data, dict)
        data["_stderr"] = result.stderr
        return data

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command(*args), env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)

    def root_dir(self, name: str) -> Path:
        return self.basedir / name


def _default_sigint() -> None:
    """deb-mock as a terminal starts it: with SIGINT's default action. A suite started as a background job
    (``bash .ci/test &``) passes SIGINT on ignored (POSIX), and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="session")
def dm() -> Iterator[DebMock]:
    if os.geteuid() != 0:
        pytest.skip("integration tests need root (CI runs them as root)")
    top = Path(tempfile.mkdtemp(prefix="deb-mock-tests-", dir="/var/tmp"))
    basedir = top / "roots"
    config_home = top / "config"
    (config_home / "deb-mock").mkdir(parents=True)
    (config_home / "deb-mock" / "config.yaml").write_text(
        f"basedir: {basedir}\ncache_topdir: {top / 'cache'}\n", encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEB_MOCK")}
    env.update({"XDG_CONFIG_HOME": str(config_home), "XDG_CACHE_HOME": str(top / "xdg-cache"), "PYTHONPATH": str(REPO),
                "DEB_MOCK_SYSCONFDIR": str(top / "etc")})
    yield DebMock(basedir, env)
    remove_tree(top)


def remove_tree(top: Path) -> None:
    """Delete the session's GBs with rm (C, one pass); only what an immutable bit kept (an ostree
    deployment's directory) gets chattr -i and a second pass, instead of walking every file twice."""
    subprocess.run(["rm", "-rf", "--one-file-system", str(top)], check=False, capture_output=True)
    if top.exists():
        subprocess.run(["chattr", "-R", "-i", str(top)], check=False, capture_output=True)
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="session")
def trixie(dm: DebMock) -> dict[str, object]:
    """The trixie-amd64 root, bootstrapped cold once per session; the --init result."""
    mounts_before = host_mounts()
    result = dm.json("-r", "trixie-amd64", "--init")
    assert result["exit_code"] == 0, result
    result["_mounts_before"] = mounts_before
    return result


@pytest.fixture
def loopback_listener() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP listener on the host's 127.0.0.1 (a free port) that records what reaches it.

    Tests prove network isolation by the sandbox *not* reaching it; no traffic
    ever leaves this machine.
    """
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    accepted: list[bytes] = []

    def serve() -> None:
        server.settimeout(120)
        try:
            while True:
                conn, _ = server.accept()
                accepted.append(conn.recv(16))
                conn.close()
        except OSError:
            return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    server.close()
    thread.join(timeout=5)


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    """Until a service started as ``process`` accepts connections on loopback ``port`` (30 s at most)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline and process.poll() is None, f"{what} did not start"
            time.sleep(0.1)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A distribution registry on a free loopback port, its storage in tmp_path/registry."""
    binary = shutil.which("docker-registry")
    assert binary, "docker-registry is not installed (.ci/install installs it)"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    storage = tmp_path / "registry"
    config = tmp_path / "registry.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process, "docker-registry")
        yield f"oci://127.0.0.1:{port}/deb-mock/cache", storage
    finally:
        process.terminate()
        process.wait(timeout=30)
