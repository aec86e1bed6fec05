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
    # the root's own state is untouched by the kept build; pbuilder's F hooks run before a session
    hookdir = _hookdir(tmp_path)
    session = dm.ok(*OWN, "--hookdir", str(hookdir), "--chroot",
                    f"dpkg -s libpopt-dev >/dev/null 2>&1 && echo INSTALLED; cat {LOG}").stdout.splitlines()
    assert session == ["hook F 0 / execute"], session
    # a build that fails before its source is unpacked is kept too, and opens at /
    unmet = make_source(tmp_path, "fails-early", build_depends="no-such-package-at-all")
    early = dm.json(*OWN, "--rebuild", str(unmet), "--keep-failed", "--resultdir", str(tmp_path / "early"))
    assert early["exit_code"] == 30 and early["failed_build"]["build_dir"] == "/", early  # type: ignore[index]
    assert dm.ok(*OWN, "--chroot", "--failed-build", "pwd").stdout == "/\n"
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


def _with_tests(top: Path, name: str, control: str, scripts: dict[str, str]) -> Path:
    files = {"debian/tests/control": control, **{f"debian/tests/{test}": f"#!/bin/sh\n{body}\n"
                                                  for test, body in scripts.items()}}
    return make_source(top, name, files=files)


def test_autopkgtest_reports_passing_failing_and_skipped_tests(dm: DebMock, trixie: dict[str, object],
                                                               tmp_path: Path) -> None:
    passing = _with_tests(tmp_path, "adt-pass", "Tests: works\nDepends: @, hello\n", {"works": (
        "set -e; test -f /usr/share/doc/adt-pass/README; hello; test \"$(id -u)\" = 1000\n"
        "test \"$(grep -c : /proc/net/dev)\" = 1  # loopback only: no test here asked for the network")})
    failing = _with_tests(tmp_path, "adt-fail", "Tests: breaks\n", {"breaks": "echo failing on purpose; exit 3"})
    machine = _with_tests(tmp_path, "adt-machine", "Tests: boots\nRestrictions: isolation-machine\n",
                          {"boots": "exit 0"})
    result = dm.json(*R, "--resultdir", str(tmp_path / "out"), "--rebuild", str(passing), str(failing), str(machine),
                     "--run-autopkgtest")
    assert result["exit_code"] == 0, result  # reported, not fatal (as sbuild)
    reports = {r["source"]: r for r in result["autopkgtest"]}  # type: ignore[union-attr]
    assert reports["adt-pass"]["status"] == "pass" and not reports["adt-pass"]["network"], reports["adt-pass"]
    assert [(t["name"], t["result"]) for t in reports["adt-pass"]["tests"]] == [("works", "pass")]
    assert reports["adt-fail"]["status"] == "fail"
    assert reports["adt-fail"]["tests"] == [{"name": "breaks", "result": "fail", "detail": "non-zero exit status 3"}]
    assert reports["adt-machine"]["status"] == "neutral"
    skipped = reports["adt-machine"]["tests"]
    assert [(t["name"], t["result"]) for t in skipped] == [("boots", "skip")] and "isolation-machine" in \
        skipped[0]["detail"]
    log = tmp_path / "out/adt-fail_1.0/autopkgtest.log"
    assert "failing on purpose" in log.read_text()
    fatal = dm.json(*R, "--resultdir", str(tmp_path / "fatal"), "--rebuild", str(failing), "--run-autopkgtest",
                    "--autopkgtest-fail")
    assert fatal["exit_code"] == 12 and "autopkgtest: fail" in str(fatal["error"]), fatal
    assert (tmp_path / "fatal/adt-fail_1.0_all.deb").is_file()  # the build's results are kept all the same


def test_piuparts_finds_what_a_purge_leaves_behind(dm: DebMock, trixie: dict[str, object], tmp_path: Path) -> None:
    clean = make_source(tmp_path, "purges-clean", files={
        "debian/postinst": "#!/bin/sh\nmkdir -p /var/lib/purges-clean\necho state > /var/lib/purges-clean/s\n",
        "debian/postrm": "#!/bin/sh\nif [ \"$1\" = purge ]; then rm -rf /var/lib/purges-clean; fi\n"})
    leaves = make_source(tmp_path, "leaves-state", files={
        "debian/postinst": "#!/bin/sh\nmkdir -p /var/lib/leaves-state\necho state > /var/lib/leaves-state/s\n"})
    result = dm.json(*R, "--resultdir", str(tmp_path / "out"), "--rebuild", str(clean), str(leaves),
                     "--run-piuparts", "--piuparts-fail", "--continue")
    assert result["exit_code"] == 4, result  # one of the two failed its check
    reports = {r["source"]: r for r in result["piuparts"]}  # type: ignore[union-attr]
    assert reports["purges-clean"]["status"] == "pass" and reports["purges-clean"]["leftovers"] == []
    assert reports["purges-clean"]["steps"] == {"install": "ok", "remove": "ok", "purge": "ok"}
    assert reports["leaves-state"]["status"] == "fail"
    assert reports["leaves-state"]["leftovers"] == ["/var/lib/leaves-state", "/var/lib/leaves-state/s"]
    assert "leaves-state" in str(result["error"])
    assert (tmp_path / "out/leaves-state_1.0/piuparts.log").is_file()
