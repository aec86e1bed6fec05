"""The helper that runs the operator's own commands outside deb-mock's user namespace: its plumbing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deb_mock import caller_commands


def test_commands_run_through_the_helper_with_their_status_and_output(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caller_commands, "_RUNNER", None)
    caller_commands.start_runner()
    log = tmp_path / "build.log"
    env = {"PATH": "/usr/bin:/bin", "GREETING": "hi", "DEB_MOCK_ROOTLESS": "1"}
    status = caller_commands.run(["/bin/sh", "-c", 'echo "$GREETING ${DEB_MOCK_ROOTLESS:-outside} $$"; exit 3'],
                                 env, str(tmp_path), str(log))
    assert status == 3
    greeting, marker, pid = log.read_text().split()
    assert (greeting, marker) == ("hi", "outside") and int(pid) != os.getpid()
    assert caller_commands.run(["/no/such/program"], env, str(tmp_path), str(log)) == 127
    assert "cannot run /no/such/program" in log.read_text()
    request_write, reply_read = caller_commands._RUNNER  # type: ignore[misc]
    os.close(request_write)  # the helper ends at the end of its input
    assert os.read(reply_read, 1) == b""
    os.close(reply_read)
    os.waitpid(-1, 0)


def test_without_a_helper_commands_run_in_this_process_namespace(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caller_commands, "_RUNNER", None)
    log = tmp_path / "log"
    assert caller_commands.run(["/bin/sh", "-c", "echo direct"], {"PATH": "/bin"}, str(tmp_path), str(log)) == 0
    assert log.read_text() == "direct\n"
