"""The script that copies a build's results out of the root, run by sh over a small build directory."""

from __future__ import annotations

import subprocess
from pathlib import Path

from deb_mock import build_commands

CHANGES = """Format: 1.8
Source: foo
Files:
 0123 10 misc optional foo_1_all.deb
 4567 20 misc optional foo_1.buildinfo
"""


def collect(build: Path, out: Path) -> subprocess.CompletedProcess[str]:
    argv = build_commands.collect_command(["*.changes"])
    argv[argv.index(build_commands.BUILD_TOP)] = str(build)
    argv[argv.index(build_commands.RESULT_MOUNT)] = str(out)
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def build_dir(tmp_path: Path) -> tuple[Path, Path]:
    build, out = tmp_path / "build", tmp_path / "out"
    build.mkdir()
    out.mkdir()
    (build / "foo_1_amd64.changes").write_text(CHANGES)
    (build / "foo_1_all.deb").write_bytes(b"deb")
    (build / "foo_1.buildinfo").write_text("info")
    (build / "unlisted.txt").write_text("stays")
    return build, out


def test_only_listed_files_land_whole_and_a_link_in_the_way_is_replaced(tmp_path: Path) -> None:
    build, out = build_dir(tmp_path)
    victim = tmp_path / "victim"
    victim.write_text("host file")
    (out / "foo_1_all.deb").symlink_to(victim)
    done = collect(build, out)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["foo_1.buildinfo", "foo_1_all.deb", "foo_1_amd64.changes"]
    assert sorted(p.name for p in out.iterdir()) == ["foo_1.buildinfo", "foo_1_all.deb", "foo_1_amd64.changes"]
    assert not (out / "foo_1_all.deb").is_symlink() and (out / "foo_1_all.deb").read_bytes() == b"deb"
    assert victim.read_text() == "host file"


def test_a_listed_link_is_refused_and_nothing_is_left_behind(tmp_path: Path) -> None:
    build, out = build_dir(tmp_path)
    (build / "foo_1.buildinfo").unlink()
    (build / "foo_1.buildinfo").symlink_to("/etc/passwd")
    done = collect(build, out)
    assert done.returncode == 1 and "refusing foo_1.buildinfo" in done.stderr
    assert list(out.iterdir()) == []

