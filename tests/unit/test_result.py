"""deb_mock.result: result.json and --json output."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from deb_mock.result import Artifact, RunResult


def test_artifact_of(tmp_path: Path) -> None:
    path = tmp_path / "hello_2.10-3_amd64.deb"
    content = b"!<arch>\n" + bytes(range(256)) * 5000
    path.write_bytes(content)
    artifact = Artifact.of(path)
    assert artifact.path == str(path)
    assert artifact.size == len(content)
    assert artifact.sha256 == hashlib.sha256(content).hexdigest()


def test_artifact_of_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert Artifact.of(path) == Artifact(str(path), 0, hashlib.sha256(b"").hexdigest())


def test_to_dict_keys_of_success() -> None:
    result = RunResult(mode="chroot", root="trixie-amd64", durations={"chroot": 1.23456})
    data = result.to_dict()
    assert set(data) == {
        "status",
        "exit_code",
        "root",
        "mode",
        "durations",
        "artifacts",
        "config_digest",
        "resultdir",
    }
    assert data["status"] == "success"
    assert data["exit_code"] == 0
    assert data["durations"] == {"chroot": 1.235}
    assert data["artifacts"] == []


def test_to_dict_of_failure_with_artifacts_and_extra(tmp_path: Path) -> None:
    path = tmp_path / "a.deb"
    path.write_bytes(b"x")
    result = RunResult(
        mode="install",
        exit_code=30,
        error="apt-get install failed",
        artifacts=[Artifact.of(path)],
        extra={"image": "out.qcow2"},
    )
    assert result.status == "failure"
    data = result.to_dict()
    assert data["error"] == "apt-get install failed"
    assert data["image"] == "out.qcow2"
    assert data["artifacts"] == [
        {"path": str(path), "size": 1, "sha256": hashlib.sha256(b"x").hexdigest()}
    ]


@pytest.mark.parametrize(("code", "status"), [(0, "success"), (1, "failure"), (60, "failure")])
def test_status(code: int, status: str) -> None:
    assert RunResult(mode="init", exit_code=code).status == status


def test_to_json_is_the_dict() -> None:
    result = RunResult(mode="init", root="r", config_digest="d")
    assert json.loads(result.to_json()) == result.to_dict()


def test_write_is_atomic(tmp_path: Path) -> None:
    (tmp_path / "result.json").write_text("old")
    inode_before = (tmp_path / "result.json").stat().st_ino
    result = RunResult(mode="init", root="r", resultdir=str(tmp_path))
    result.write(tmp_path)
    target = tmp_path / "result.json"
    assert json.loads(target.read_text()) == result.to_dict()
    assert target.read_text().endswith("\n")
    assert target.stat().st_ino != inode_before  # replaced by a rename
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


@pytest.mark.parametrize("code, failure", [(0, None), (10, "package"), (30, "package"), (40, "package"),
                                           (12, "package"), (20, "infrastructure"), (60, "infrastructure"),
                                           (90, "infrastructure"), (7, "infrastructure"), (3, "infrastructure")])
def test_a_failure_says_whose_it_is(code: int, failure: str | None) -> None:
    data = RunResult(mode="rebuild", exit_code=code).to_dict()
    assert data.get("failure") == failure
    assert ("failure" in data) == (code != 0)
