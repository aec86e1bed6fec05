"""Before an upload: sbuild's stage commands, a pbuilder hook directory, a kept failed build, --installdeps.

Each test builds small source packages of its own in the session's trixie
root (or in a second root of the same config, so that changes to the root's
own state never reach other tests).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import DebMock
from tests.integration.debsrc import make_source

pytestmark = [pytest.mark.root, pytest.mark.network, pytest.mark.slow]
R = ("-r", "trixie-amd64")
#: a second root of the same config for tests that change a root's own state
OWN = ("-r", "trixie-amd64", "--uniqueext", "workflow")
LOG = "/tmp/deb-mock-stages.txt"


def _hookdir(top: Path) -> Path:
    """A pbuilder hook directory: every letter appends itself, its user and directory to the stage log."""
    hookdir = top / "hooks"
    hookdir.mkdir()
    for letter in "ABCDEFHI":
        script = hookdir / f"{letter}10record"
        script.write_text(f'#!/bin/sh\necho "hook {letter} $(id -u) $(pwd) $PBUILDER_OPERATION" >> {LOG}\n')
        script.chmod(0o755)
    ignored = hookdir / "A20backup~"
    ignored.write_text(f"#!/bin/sh\necho ignored >> {LOG}\n")
    ignored.chmod(0o755)
    return hookdir


def _stage(name: str) -> list[str]:
    """A stage command that records the stage, the user, the directory and the escapes."""
    return [f"--{name}", f'echo "stage {name} $(id -u) $(pwd) %a %p %d" >> {LOG}']


def test_stage_commands_and_hooks_run_in_sbuilds_order(dm: DebMock, trixie: dict[str, object],
                                                       tmp_path: Path) -> None:
    dsc = make_source(tmp_path, "staged", build_depends="libpopt-dev")
    host_log = tmp_path / "host.txt"
    resultdir = tmp_path / "result"
    args = [*R, "--rebuild", str(dsc), "--resultdir", str(resultdir), "--hookdir", str(_hookdir(tmp_path)),
            "--pre-build-commands", f"echo \"pre $(id -u) %d\" >> {host_log}",
            *_stage("chroot-setup-commands"), *_stage("starting-build-commands"),
            "--starting-build-commands", f"dpkg -s libpopt-dev >/dev/null && echo deps-installed >> {LOG}",
            *_stage("finished-build-commands"), *_stage("chroot-cleanup-commands"),
            "--chroot-cleanup-commands", f"echo \"changes %c\" >> {LOG}; sed 's/^/IN-ROOT /' {LOG}",
            "--build-failed-commands", f"echo never >> {LOG}",
            "--post-build-commands", f"echo \"post %c\" >> {host_log}; ls \"$(dirname %c)\" >> {host_log}",
            "--post-build-failed-commands", f"echo never >> {host_log}"]
    result = dm.json(*args)
    assert result["exit_code"] == 0, result
    inside = [line.removeprefix("IN-ROOT ") for line in (resultdir / "build.log").read_text().splitlines()
              if line.startswith("IN-ROOT ")]
    src, top = "/build/reproducible-path/staged-1.0", "/build/reproducible-path"
    assert inside == [
        f"stage chroot-setup-commands 0 / amd64 {src} /run/deb-mock/src/staged_1.0.dsc",
        "hook H 0 / chroot-setup-commands", "hook D 0 / chroot-setup-commands",
        f"stage starting-build-commands 0 {src} amd64 {src} /run/deb-mock/src/staged_1.0.dsc",
        "deps-installed", f"hook A 0 {src} starting-build-commands",
        f"stage finished-build-commands 0 {src} amd64 {src} /run/deb-mock/src/staged_1.0.dsc",
        f"hook B 0 {src} finished-build-commands",
        f"stage chroot-cleanup-commands 0 {src} amd64 {src} /run/deb-mock/src/staged_1.0.dsc",
        f"changes {top}/staged_1.0_amd64.changes",
    ], inside
    host = host_log.read_text().splitlines()
    assert host[0] == f"pre 0 {dsc}" and host[1] == f"post {resultdir}/staged_1.0_amd64.changes", host
    assert {"staged_1.0_all.deb", "staged_1.0_amd64.changes", "build.log"} <= set(host[2:]), host
    assert "never" not in host
    stages = [(s["stage"], s["where"], s["exit_code"]) for s in result["stage_commands"]]  # type: ignore[index]
    assert stages[0] == ("pre-build-commands", "host", 0) and stages[-1] == ("post-build-commands", "host", 0)
    assert ("chroot-cleanup-commands", "root", 0) in stages and all(code == 0 for _, _, code in stages)


def test_a_failing_stage_command_fails_the_build_with_its_status(dm: DebMock, trixie: dict[str, object],
                                                                 tmp_path: Path) -> None:
    dsc = make_source(tmp_path, "stopped")
    host_log = tmp_path / "host.txt"
    result = dm.json(*R, "--rebuild", str(dsc), "--resultdir", str(tmp_path / "out"),
                     "--starting-build-commands", "echo about to fail; exit 7",
                     "--post-build-failed-commands", f"echo failed-on-host >> {host_log}")
    assert result["exit_code"] == 10, result
    assert "starting-build-commands" in str(result["error"]) and "status 7" in str(result["error"])
    last = result["stage_commands"][-2]  # type: ignore[index]
    assert (last["stage"], last["exit_code"]) == ("starting-build-commands", 7), result["stage_commands"]
    assert host_log.read_text() == "failed-on-host\n"
    assert not list((tmp_path / "out").glob("*.deb"))


def test_a_kept_failed_build_opens_in_its_build_directory(dm: DebMock, trixie: dict[str, object],
                                                          tmp_path: Path) -> None:
    dsc = make_source(tmp_path, "fails", build="\techo partial > built-so-far\n\tfalse",
                      build_depends="libpopt-dev")
    result = dm.json(*OWN, "--rebuild", str(dsc), "--keep-failed", "--resultdir", str(tmp_path / "out"))
    assert result["exit_code"] == 10, result
    kept = result["failed_build"]
    assert kept["build_dir"] == "/build/reproducible-path/fails-1.0", kept  # type: ignore[index]
    shell = dm.run(*OWN, "--shell", "--failed-build", "pwd; cat built-so-far; dpkg -s libpopt-dev | grep Status")
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.splitlines() == ["/build/reproducible-path/fails-1.0", "partial",
                                         "Status: install ok installed"], shell.stdout
    # the root's own state is untouched by the kept build
    assert dm.run(*OWN, "--chroot", "dpkg -s libpopt-dev").returncode != 0
    dm.ok(*OWN, "--clean")
    missing = dm.run(*OWN, "--shell", "--failed-build", "true")
    assert missing.returncode == 5 and "no failed build kept" in missing.stderr, missing.stderr


def test_installdeps_installs_the_build_dependencies_into_the_root(dm: DebMock, trixie: dict[str, object],
                                                                   tmp_path: Path) -> None:
    dsc = make_source(tmp_path, "needs-two", build_depends="libpopt-dev, liblz4-dev")
    query = "dpkg-query -W -f '${Package} ${Status}\\n' libpopt-dev liblz4-dev"
    before = dm.run(*OWN, "--chroot", query)
    assert before.returncode != 0
    dm.ok(*OWN, "--installdeps", str(dsc))
    after = dm.ok(*OWN, "--chroot", query).stdout.splitlines()
    assert sorted(after) == ["liblz4-dev install ok installed", "libpopt-dev install ok installed"], after
    dm.ok(*OWN, "--clean")
    state = json.loads((dm.root_dir("trixie-amd64-workflow") / "state.json").read_text())
    assert state["upper"] == {}
