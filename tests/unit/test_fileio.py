"""Atomic writes and the delivery of what a sandbox wrote."""

from __future__ import annotations

import os
from pathlib import Path

from deb_mock.fileio import deliver_tree, write_atomic


def test_delivery_drops_privileges_and_never_follows_links(tmp_path: Path) -> None:
    stage, out, victim = tmp_path / "stage", tmp_path / "out", tmp_path / "victim"
    (stage / "d").mkdir(parents=True)
    victim.write_text("untouched")
    (stage / "tool").write_text("#!/bin/sh\n")
    (stage / "tool").chmod(0o6755)
    (stage / "d" / "f").write_text("x")
    (stage / "build.log").symlink_to(victim)
    out.mkdir()
    (out / "tool").symlink_to(victim)  # a link already at the destination is replaced, not written through
    assert deliver_tree(stage, out, links=False) == ["build.log", "d", "tool"]
    assert victim.read_text() == "untouched" and not (out / "build.log").exists()
    assert not (out / "tool").is_symlink() and (out / "tool").stat().st_mode & 0o7777 == 0o755
    assert (out / "d" / "f").read_text() == "x"
    deliver_tree(stage, out, links=True)
    assert os.readlink(out / "build.log") == str(victim)


def test_write_atomic_replaces_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_atomic(target, "one")
    write_atomic(target, b"two", durable=True)
    assert target.read_text() == "two" and sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
