"""Rootless mode for real: an ordinary user with subordinate ids, no root, no setuid group of ours.

(The sysctl messages are unit-tested with a fake /proc/sys: /proc/sys is
read-only on these machines, so a test cannot switch user namespaces off.)

The session creates the user (useradd, usermod --add-subuids) and runs
deb-mock as that user with setpriv; roots and caches land in the user's XDG
directories. The venv's Python must be executable by other users (.ci/install
builds it from /usr/bin/python3).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deb_mock import userns
from tests.integration.conftest import REPO, DebMock
from tests.integration.debsrc import make_source

pytestmark = [pytest.mark.root, pytest.mark.network, pytest.mark.slow]
USER, NO_RANGE_USER = "dm-rootless", "dm-norange"
SUBIDS = (300000, 65536)
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"


@dataclass
class User:
    name: str
    uid: int
    gid: int
    home: Path

    def env(self, **more: str) -> dict[str, str]:
        return {"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name, "LANG": "C.UTF-8",
                "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "PYTHONPATH": str(REPO), **more}

    def run(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 900) -> subprocess.CompletedProcess[str]:
        argv = [SETPRIV, f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups",
                sys.executable, "-m", "deb_mock", *args]
        return subprocess.run(argv, env=env or self.env(), cwd=cwd or self.home, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def ok(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        result = self.run(*args, timeout=timeout)
        assert result.returncode == 0, f"deb-mock {' '.join(args)} -> {result.returncode}\n{result.stderr[-3000:]}"
        return result

    @property
    def roots(self) -> Path:
        return self.home / ".local/share/deb-mock"


def _make_user(name: str, subids: bool) -> User:
    """A fresh user; useradd may give it a range already (login.defs SUB_UID_COUNT): keep or drop it."""
    subprocess.run(["userdel", "--remove", name], capture_output=True, check=False)
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
    entry = pwd.getpwnam(name)
    given = userns.subordinate_range(Path("/etc/subuid"), name, entry.pw_uid)
    given_gids = userns.subordinate_range(Path("/etc/subgid"), name, entry.pw_uid)
    if subids and (given is None or given_gids is None):
        start, count = SUBIDS
        ids = f"{start}-{start + count - 1}"
        subprocess.run(["usermod", "--add-subuids", ids, "--add-subgids", ids, name], check=True)
    if not subids:
        for flag, found in (("--del-subuids", given), ("--del-subgids", given_gids)):
            if found is not None:
                subprocess.run(["usermod", flag, f"{found.start}-{found.start + found.count - 1}", name], check=True)
    return User(name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir))


def first_subuid(user: User) -> int:
    found = userns.subordinate_range(Path("/etc/subuid"), user.name, user.uid)
    assert found is not None
    return found.start


@pytest.fixture(scope="module")
def user(dm: DebMock, trixie: dict[str, object]) -> Iterator[User]:
    if not os.access(sys.executable, os.X_OK) or not _executable_by_others(Path(sys.executable)):
        pytest.fail(f"{sys.executable} cannot be run by other users: build .venv from /usr/bin/python3 (.ci/install)")
    made = _make_user(USER, subids=True)
    yield made
    made.run("--scrub=all")
    subprocess.run(["userdel", "--remove", USER], capture_output=True, check=False)


def _executable_by_others(path: Path) -> bool:
    real = path.resolve()
    return all(os.stat(p).st_mode & 0o001 for p in [real, *real.parents])


def test_init_chroot_install_as_an_ordinary_user(user: User) -> None:
    user.ok("-r", "trixie-amd64", "--init", timeout=900)
    base = user.roots / "trixie-amd64" / "base"
    assert base.is_dir() and base.stat().st_uid == user.uid  # root inside = the caller outside
    partial = base / "var/cache/apt/archives/partial"
    assert partial.stat().st_uid == first_subuid(user) + 42 - 1  # _apt (uid 42) in the subordinate range
    assert user.ok("-r", "trixie-amd64", "--chroot", "id -u; id -un").stdout.split() == ["0", "root"]
    user.ok("-r", "trixie-amd64", "--install", "hello")
    assert "Hello, world!" in user.ok("-r", "trixie-amd64", "--chroot", "hello").stdout
    assert not any(str(user.roots) in line for line in Path("/proc/self/mounts").read_text().splitlines())


def test_snapshot_cycle_and_copies(user: User, tmp_path: Path) -> None:
    user.ok("-r", "trixie-amd64", "--snapshot", "with-hello")
    user.ok("-r", "trixie-amd64", "--install", "tree")
    user.ok("-r", "trixie-amd64", "--rollback-to", "with-hello")
    assert user.run("-r", "trixie-amd64", "--chroot", "command -v tree").returncode != 0
    note = user.home / "note.txt"
    note.write_text("from the host\n")
    os.chown(note, user.uid, user.gid)
    user.ok("-r", "trixie-amd64", "--copyin", str(note), "/tmp/")
    user.ok("-r", "trixie-amd64", "--copyout", "/tmp/note.txt", str(user.home / "back.txt"))
    back = user.home / "back.txt"
    assert back.read_text() == "from the host\n" and back.stat().st_uid == user.uid
    user.ok("-r", "trixie-amd64", "--clean")  # the copy stands on the snapshot: drop it first
    user.ok("-r", "trixie-amd64", "--remove-snapshot", "with-hello")


def test_rebuild_matches_root_mode(user: User, dm: DebMock, tmp_path: Path) -> None:
    sources = user.home / "src"
    sources.mkdir()
    dsc = make_source(sources, "dm-rootless-probe")
    subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", str(sources)], check=True)
    user.ok("-r", "trixie-amd64", "--rebuild", str(dsc))
    results = user.roots / "trixie-amd64" / "result"
    debs = sorted(results.glob("*.deb"))
    assert [d.name for d in debs] == ["dm-rootless-probe_1.0_all.deb"]
    assert all(p.stat().st_uid == user.uid for p in results.iterdir())
    root_results = tmp_path / "root-results"
    dm.ok("-r", "trixie-amd64", "--resultdir", str(root_results), "--rebuild", str(dsc))
    assert (root_results / debs[0].name).read_bytes() == debs[0].read_bytes()


def test_stage_commands_a_kept_failed_build_and_piuparts_as_an_ordinary_user(user: User) -> None:
    R = ("-r", "trixie-amd64")
    sources = user.home / "workflow"
    sources.mkdir()
    failing = make_source(sources, "dm-rootless-fails", build="\techo half > half-built\n\tfalse")
    passing = make_source(sources, "dm-rootless-checked")
    subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", str(sources)], check=True)
    failed = user.run(*R, "--rebuild", str(failing), "--keep-failed",
                      "--build-failed-commands", "echo in-root-after-failure $(id -u)",
                      "--post-build-failed-commands", f"id -u > {sources}/host-side")
    assert failed.returncode == 10, failed.stderr
    assert (sources / "host-side").read_text().strip() == str(user.uid)  # the host side runs as the user
    log = (user.roots / "trixie-amd64/result/build.log").read_text()
    assert "in-root-after-failure 0" in log
    kept = user.ok(*R, "--shell", "--failed-build", "pwd; cat half-built").stdout.split()
    assert kept == ["/build/reproducible-path/dm-rootless-fails-1.0", "half"], kept
    user.ok(*R, "--rebuild", str(passing), "--run-piuparts", "--piuparts-fail")
    assert user.run(*R, "--shell", "--failed-build", "true").returncode == 5  # the next build dropped it


def test_the_root_is_a_container_for_an_ordinary_user_too(user: User) -> None:
    """The double chroot cannot reach the user's own files; builds have no capability; copies drop setuid."""
    R = ("-r", "trixie-amd64")
    sentinel = user.home / "escaped"
    climb = ('cd /root && perl -e \'mkdir "x"; chroot "x"; chdir ".." for 1..60; chroot "."; '
             f'open(F, ">", "{sentinel}") and print F 1\'; true')
    user.ok(*R, "--chroot", climb)
    assert not sentinel.exists(), "the double chroot wrote the user's home"
    status = user.ok(*R, "--unpriv", "--chroot", "grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status").stdout.split()
    assert status == ["CapBnd:", "0000000000000000", "NoNewPrivs:", "1"], status
    assert user.run(*R, "--chroot", "echo x > /proc/sys/kernel/core_pattern").returncode != 0
    user.ok(*R, "--chroot", "cp /bin/true /root/suid && chmod 4755 /root/suid")
    user.ok(*R, "--copyout", "/root/suid", str(user.home) + "/")
    assert not (user.home / "suid").stat().st_mode & 0o6000


def test_buildsrc_and_shell_as_an_ordinary_user(user: User) -> None:
    sources = user.home / "tree-src"
    sources.mkdir()
    make_source(sources, "dm-rootless-tree", version="2.0")
    subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", str(sources)], check=True)
    out = user.home / "tree-out"
    user.ok("-r", "trixie-amd64", "--resultdir", str(out), "--buildsrc", "--sources",
            str(sources / "dm-rootless-tree-2.0"))
    assert (out / "dm-rootless-tree_2.0_all.deb").stat().st_uid == user.uid
    assert (out / "dm-rootless-tree_2.0.dsc").is_file()
    shell = user.run("-r", "trixie-amd64", "--shell", "id -u; hostname")
    assert shell.returncode == 0 and shell.stdout.split() == ["0", "deb-mock"], shell


def test_scrub_removes_what_subordinate_ids_own(user: User) -> None:
    user.ok("-r", "trixie-amd64", "--uniqueext", "gone", "--init")
    top = user.roots / "trixie-amd64-gone"
    assert (top / "base/var/cache/apt/archives/partial").stat().st_uid != user.uid
    user.ok("-r", "trixie-amd64", "--uniqueext", "gone", "--scrub=chroot")
    assert not (top / "base").exists() and not (top / "upper").exists()
    left = [p for p in top.rglob("*") if p.lstat().st_uid != user.uid]  # only the run's result.json is left
    assert not left, left


def test_missing_prerequisites_say_what_to_do(user: User) -> None:
    other = _make_user(NO_RANGE_USER, subids=False)
    try:
        result = other.run("-r", "trixie-amd64", "--init")
        assert result.returncode == 80 and "usermod --add-subuids" in result.stderr, result.stderr
        # a boot needs no root: without a user namespace it falls back to the host's qemu, and says why
        boot = other.run("--bootc-run", str(other.home / "none.qcow2"), "--bootc-run-timeout", "5")
        assert "booting with the host's qemu" in boot.stderr and "usermod --add-subuids" in boot.stderr, boot.stderr
        assert boot.returncode != 0 and "none.qcow2" in boot.stderr, boot.stderr
        no_tool = user.run("-r", "trixie-amd64", "--init", env=user.env(PATH="/nonexistent"))
        assert no_tool.returncode == 80 and "apt-get install uidmap" in no_tool.stderr, no_tool.stderr
        forced = user.run("-r", "trixie-amd64", "--isolation=root", "--chroot", "true")
        assert forced.returncode == 80 and "root mode needs root" in forced.stderr
        assert "Traceback" not in result.stderr + no_tool.stderr + forced.stderr + boot.stderr
    finally:
        subprocess.run(["userdel", "--remove", NO_RANGE_USER], capture_output=True, check=False)
        shutil.rmtree(other.home, ignore_errors=True)


BOOTC_CONFIG = """\
templates: [trixie-amd64]
name: trixie-amd64
plugins:
  bootc: {root_password: rootless-pw}
"""


@pytest.mark.qemu
def test_bootc_image_as_an_ordinary_user_boots_and_matches_root_mode(user: User, dm: DebMock,
                                                                      tmp_path: Path) -> None:
    config = user.home / "bootc.yaml"
    config.write_text(BOOTC_CONFIG)
    os.chown(config, user.uid, user.gid)
    # a VirtualBox disk: this one boot is also the suite's proof that the cloud formats boot (issue 16)
    image = user.home / "image.vdi"
    user.ok("-r", str(config), "--uniqueext", "bootc", "--bootc-image", str(image), timeout=1500)
    assert image.stat().st_uid == user.uid
    user.ok("-r", str(config), "--uniqueext", "bootc", "--bootc-commit", str(user.home / "repo"))
    rootless_commit = (user.home / "repo/refs/heads/debian/trixie/amd64").read_text().strip()
    user.ok("-r", str(config), "--uniqueext", "bootc", "--bootc-container", f"oci:{user.home / 'oci'}")
    inspect = subprocess.run(["skopeo", "inspect", f"oci:{user.home / 'oci'}:latest"], capture_output=True,
                             text=True, check=True).stdout
    assert '"containers.bootc": "1"' in inspect
    booted = user.run("--bootc-run", str(image), "--bootc-run-timeout", "300", timeout=600)
    assert booted.returncode == 0 and "login prompt after" in booted.stderr, booted.stderr[-2000:]
    # qemu from the release's boot tools, made in the user's namespace into the user's cache
    assert "making the boot tools" in booted.stderr, booted.stderr[-2000:]
    tools = user.home / ".cache/deb-mock/bootc-tools"
    assert [t.name for t in tools.iterdir() if (t / "usr/bin/qemu-system-x86_64").is_file()], list(tools.iterdir())
    root_config = tmp_path / "bootc.yaml"
    root_config.write_text(BOOTC_CONFIG)
    dm.ok("-r", str(root_config), "--uniqueext", "bootc-root", "--bootc-commit", str(tmp_path / "repo"),
          timeout=1500)
    root_commit = (tmp_path / "repo/refs/heads/debian/trixie/amd64").read_text().strip()
    assert rootless_commit == root_commit, "the same packages must give the same commit in both modes"
    dm.ok("-r", str(root_config), "--uniqueext", "bootc-root", "--scrub=chroot")  # all would drop shared caches


def test_scrub_all_removes_the_users_roots_and_caches(user: User) -> None:
    """Last in this module: everything the user's runs made, subordinate-owned files included, goes."""
    user.ok("-r", "trixie-amd64", "--scrub=all")
    top = user.roots / "trixie-amd64"
    assert not (top / "base").exists() and not (top / "bootc").exists()
    cache = user.home / ".cache/deb-mock/trixie-amd64"
    assert not list(cache.glob("root_cache/*.tar.zst"))
    assert not (user.home / ".cache/deb-mock/bootc-tools").exists()  # subordinate-owned: deleted in the namespace
    assert user.run("-r", "trixie-amd64", "--chroot", "true").returncode == 0  # and the next run works
