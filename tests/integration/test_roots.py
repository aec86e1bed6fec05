"""Roots for real: bootstrap, warm init, commands, apt, copying, cleaning, other configs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import DebMock, host_mounts
from tests.integration.debsrc import make_source

pytestmark = [pytest.mark.root, pytest.mark.network, pytest.mark.slow]
R = ("-r", "trixie-amd64")


def test_cold_init_bootstraps_a_trixie_base(dm: DebMock, trixie: dict[str, object]) -> None:
    root = dm.root_dir("trixie-amd64")
    assert (root / "base" / "etc" / "debian_version").read_text().startswith("13")
    state = json.loads((root / "state.json").read_text())
    assert state["base"]["suite"] == "trixie" and state["layers"] == []
    assert "bootstrap" in trixie["durations"]  # type: ignore[operator]
    assert not list(root.glob("base.incoming-*"))
    assert host_mounts() == trixie["_mounts_before"], "init added a mount to the host"
    user = (root / "base" / "etc" / "passwd").read_text()
    assert "build:x:1000:1000:" in user


def test_warm_init_does_no_bootstrap(dm: DebMock, trixie: dict[str, object]) -> None:
    result = dm.json(*R, "--init")
    assert result["exit_code"] == 0
    assert result["durations"] == {}
    assert "bootstrapping" not in str(result["_stderr"])


def test_chroot_runs_in_the_root_and_is_logged(dm: DebMock, trixie: dict[str, object]) -> None:
    result = dm.ok(*R, "--chroot", "cat /etc/debian_version")
    assert result.stdout.strip().startswith("13")
    log = (dm.root_dir("trixie-amd64") / "result" / "root.log").read_text()
    assert "$ /bin/sh -c cat /etc/debian_version" in log
    assert result.stdout.strip() in log
    assert dm.run(*R, "--chroot", "exit 7").returncode == 7
    direct = dm.ok(*R, "--chroot", "--", "printf", "%s|", "a b", "c")
    assert direct.stdout == "a b|c|"


def test_install_run_remove_update(dm: DebMock, trixie: dict[str, object]) -> None:
    dm.ok(*R, "--install", "hello")
    assert dm.ok(*R, "--chroot", "hello").stdout.strip() == "Hello, world!"
    installed = (dm.root_dir("trixie-amd64") / "result" / "installed-pkgs.log").read_text()
    assert any(line.startswith("hello ") for line in installed.splitlines())
    dm.ok(*R, "--remove", "hello")
    assert dm.run(*R, "--chroot", "hello").returncode == 127
    dm.ok(*R, "--update")
    # mock's --pm-cmd: apt-get's own arguments, its answer shown; a simulation installs nothing
    simulated = dm.ok(*R, "--pm-cmd", "--", "-s", "install", "hello")
    assert "Inst hello " in simulated.stdout, simulated.stdout
    assert dm.run(*R, "--chroot", "hello").returncode == 127
    dm.ok(*R, "--pm-cmd", "install", "hello")
    assert dm.ok(*R, "--chroot", "hello").stdout.strip() == "Hello, world!"
    installed = (dm.root_dir("trixie-amd64") / "result" / "installed-pkgs.log").read_text()
    assert any(line.startswith("hello ") for line in installed.splitlines())
    dm.ok(*R, "--pm-cmd", "--", "purge", "--autoremove", "hello")
    assert dm.run(*R, "--chroot", "hello").returncode == 127


def test_apt_failure_names_the_package_and_exits_30(dm: DebMock, trixie: dict[str, object]) -> None:
    result = dm.run(*R, "--install", "no-such-package-xyz")
    assert result.returncode == 30
    assert "no-such-package-xyz" in result.stderr
    assert "Traceback" not in result.stderr
    bad = dm.run(*R, "--install", "-oFoo=bar")
    assert bad.returncode == 5 and "-oFoo=bar" in bad.stderr
    failed = dm.json(*R, "--pm-cmd", "install", "no-such-package-xyz")
    assert failed["exit_code"] == 30 and "no-such-package-xyz" in str(failed["error"])


def test_unpriv_runs_as_the_build_user(dm: DebMock, trixie: dict[str, object]) -> None:
    out = dm.ok(*R, "--unpriv", "--chroot", "id -un; id -u; pwd").stdout.split()
    assert out == ["build", "1000", "/home/build"]
    assert dm.ok(*R, "--cwd", "/etc", "--chroot", "pwd").stdout.strip() == "/etc"


def test_shell_with_a_command_and_interactively(dm: DebMock, trixie: dict[str, object]) -> None:
    result = dm.run(*R, "--shell", "echo from-the-shell; exit 4")
    assert result.returncode == 4 and "from-the-shell" in result.stdout
    piped = dm.run(*R, "--shell", input="echo $((6 * 7))\nexit\n")
    assert piped.returncode == 0 and "42" in piped.stdout


def test_shell_on_a_terminal(dm: DebMock, trixie: dict[str, object]) -> None:
    import os
    import pty
    import select
    import subprocess
    import time

    leader, follower = pty.openpty()
    process = subprocess.Popen(dm.command(*R, "--shell"), env=dm.env, stdin=follower,
                               stdout=follower, stderr=follower, start_new_session=True)
    os.close(follower)
    output = b""
    os.write(leader, b"echo SUM=$((40 + 2)); hostname; exit 0\n")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        if select.select([leader], [], [], 0.2)[0]:
            try:
                output += os.read(leader, 4096)
            except OSError:
                break
    process.wait(timeout=10)
    os.close(leader)
    assert process.returncode == 0
    assert b"SUM=42" in output and b"deb-mock" in output


def test_copyin_and_copyout(dm: DebMock, trixie: dict[str, object], tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("alpha\n")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "inner").write_text("beta\n")
    dm.ok(*R, "--copyin", str(tmp_path / "a.txt"), str(tmp_path / "b"), "/srv/in/")
    listing = dm.ok(*R, "--chroot", "cat /srv/in/a.txt /srv/in/b/inner").stdout
    assert listing == "alpha\nbeta\n"
    out = tmp_path / "out"
    dm.ok(*R, "--copyout", "/etc/os-release", f"{out}/")
    assert 'VERSION_CODENAME=trixie' in (out / "os-release").read_text()
    dm.ok(*R, "--copyout", "/srv/in/a.txt", str(tmp_path / "renamed.txt"))
    assert (tmp_path / "renamed.txt").read_text() == "alpha\n"
    missing = dm.run(*R, "--copyout", "/does/not/exist", f"{out}/")
    assert missing.returncode == 20 and "/does/not/exist" in missing.stderr
    assert dm.run(*R, "--copyin", str(tmp_path / "nope"), "/srv/").returncode == 5


def test_info_modes(dm: DebMock, trixie: dict[str, object]) -> None:
    path = dm.ok(*R, "--print-root-path").stdout.strip()
    assert path == str(dm.root_dir("trixie-amd64") / "mnt")
    config = dm.json(*R, "--debug-config", "--config-opts", "sandbox.hostname=builder")
    assert config["config"]["sandbox"]["hostname"] == "builder"  # type: ignore[index]
    assert config["origins"]["sandbox.hostname"].startswith("--config-opts")  # type: ignore[index]
    assert config["origins"]["suite"].endswith("trixie-amd64.yaml:3")  # type: ignore[index]
    assert dm.json(*R, "--orphanskill")["killed"] == []
    assert dm.ok(*R, "--config-opts", "sandbox.hostname=builder", "--chroot", "hostname").stdout.strip() == "builder"


def test_default_config_is_trixie_amd64(dm: DebMock, trixie: dict[str, object]) -> None:
    result = dm.json("--init")
    assert result["exit_code"] == 0 and result["root"] == "trixie-amd64"
    assert result["durations"] == {}


def test_uniqueext_root_is_independent_then_cleaned_and_scrubbed(dm: DebMock, trixie: dict[str, object]) -> None:
    U = (*R, "--uniqueext", "job42")
    dm.ok(*U, "--init")
    top = dm.root_dir("trixie-amd64-job42")
    assert (top / "base" / "etc" / "debian_version").is_file()
    dm.ok(*U, "--chroot", "touch /only-in-job42")
    assert dm.run(*R, "--chroot", "test -e /only-in-job42").returncode == 1
    assert dm.run(*U, "--chroot", "test -e /only-in-job42").returncode == 0
    dm.ok(*U, "--clean")
    assert dm.run(*U, "--chroot", "test -e /only-in-job42").returncode == 1
    assert (top / "base").is_dir()
    bad = dm.run(*U, "--scrub", "everything")
    assert bad.returncode == 5 and "everything" in bad.stderr
    dm.ok(*U, "--scrub=all")
    assert not top.exists()
    # all: the config's shared caches go too (as mock's --scrub=all)
    assert not list((dm.basedir.parent / "cache" / "trixie-amd64" / "root_cache").glob("*.tar*"))
    assert dm.root_dir("trixie-amd64").is_dir()


def test_config_given_by_path(dm: DebMock, tmp_path: Path) -> None:
    config = tmp_path / "my.yaml"
    config.write_text("description: a minimal trixie\ntemplates: [trixie-amd64]\nvariant: minbase\n")
    result = dm.json("-r", str(config), "--init")
    assert result["exit_code"] == 0 and result["root"] == "my"
    assert dm.ok("-r", str(config), "--chroot", "cat /etc/debian_version").stdout.startswith("13")
    dm.ok("-r", str(config), "--scrub=all")


def test_bad_config_exits_3_naming_file_and_line(dm: DebMock, tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("templates: [trixie-amd64]\nsuite: trixie\nvaraint: minbase\n")
    result = dm.run("-r", str(config), "--init")
    assert result.returncode == 3
    assert f"{config}:3" in result.stderr and "varaint" in result.stderr and "variant" in result.stderr
    assert "Traceback" not in result.stderr
    unknown = dm.run("-r", "trixie-amd46", "--init")
    assert unknown.returncode == 3 and "trixie-amd64" in unknown.stderr


@pytest.mark.qemu
def test_foreign_architecture_arm64(dm: DebMock, trixie: dict[str, object], tmp_path: Path) -> None:
    """An emulated arm64 root runs what a cross build for arm64 in the amd64 root made (no emulation there)."""
    dsc = make_source(tmp_path, "dm-cross", architecture="any",
                      files={"greet.c": '#include <stdio.h>\nint main(void) { puts("hello from a cross build"); }\n'},
                      build="\t$(shell dpkg-architecture -qDEB_HOST_GNU_TYPE)-gcc -O2 -o greet greet.c\n"
                            "\tinstall -D -m 755 greet debian/tmp/usr/bin/greet")
    out = tmp_path / "cross"
    cross = dm.json("-r", "trixie-amd64", "--resultdir", str(out), "--rebuild", str(dsc), "--host", "arm64")
    assert cross["exit_code"] == 0, cross
    deb = out / "dm-cross_1.0_arm64.deb"
    kind = subprocess.run(["sh", "-c", f"dpkg-deb --fsys-tarfile {deb} | tar -xOf - ./usr/bin/greet | file -"],
                          capture_output=True, text=True, check=True).stdout
    assert "ARM aarch64" in kind, kind
    # trixie-arm64 as minbase: every package a bootstrap configures runs under qemu-user, and this root builds
    # nothing (the extended test bootstraps a full trixie-arm64 and makes an image of it)
    config = tmp_path / "arm64-minbase.yaml"
    config.write_text("templates: [trixie-arm64]\nvariant: minbase\n")
    A = ("-r", str(config))
    dm.ok(*A, "--init", timeout=1800)
    assert dm.ok(*A, "--chroot", "uname -m").stdout.strip() == "aarch64"
    assert dm.ok(*A, "--chroot", "dpkg --print-architecture").stdout.strip() == "arm64"
    dm.ok(*A, "--install", str(deb))
    assert dm.ok(*A, "--chroot", "greet").stdout == "hello from a cross build\n"
    dm.ok(*A, "--scrub=all")
