"""The bind_mount, tmpfs and hw_info plugins working in real roots."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import DebMock
from tests.integration.debsrc import make_source

pytestmark = [pytest.mark.root, pytest.mark.network, pytest.mark.slow]
R = ("-r", "trixie-amd64")


def test_bind_mount_plugin(dm: DebMock, trixie: dict[str, object], tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello.txt").write_text("from the host\n")
    option = f"bind_mount:mounts=[{{source: {shared}, target: /mnt/shared}}]"
    out = dm.ok(*R, "--plugin-option", option, "--chroot", "cat /mnt/shared/hello.txt").stdout
    assert out == "from the host\n"
    assert dm.run(*R, "--plugin-option", option, "--chroot", "touch /mnt/shared/new").returncode != 0
    rw = f"bind_mount:mounts=[{{source: {shared}, target: /mnt/shared, readonly: false}}]"
    dm.ok(*R, "--plugin-option", rw, "--chroot", "echo back > /mnt/shared/new")
    assert (shared / "new").read_text() == "back\n"
    missing = dm.run(*R, "--plugin-option", "bind_mount:mounts=[{source: /no/such/dir, target: /x}]",
                     "--chroot", "true")
    assert missing.returncode == 3 and "/no/such/dir" in missing.stderr


def test_tmpfs_plugin(dm: DebMock, trixie: dict[str, object]) -> None:
    args = ("--enable-plugin", "tmpfs", "--plugin-option", "tmpfs:mounts=[{target: /scratch, size: 16M}]")
    out = dm.ok(*R, *args, "--chroot", "grep ' /scratch ' /proc/mounts; df -k /scratch | tail -1").stdout
    assert out.startswith("tmpfs /scratch tmpfs")
    assert out.splitlines()[1].split()[1] == "16384"
    dm.ok(*R, *args, "--chroot", "echo x > /scratch/file")
    assert dm.run(*R, *args, "--chroot", "test -e /scratch/file").returncode == 1
    assert dm.run(*R, "--chroot", "grep -q ' /scratch ' /proc/mounts").returncode == 1


def test_hw_info_plugin_and_disabling(dm: DebMock, trixie: dict[str, object], tmp_path: Path) -> None:
    """hw_info.log comes with every build (as mock's), not with a --chroot, and not when the plugin is off."""
    log = dm.root_dir("trixie-amd64") / "result" / "hw_info.log"
    log.unlink(missing_ok=True)
    dm.ok(*R, "--chroot", "true")
    assert not log.exists()
    dsc = make_source(tmp_path, "dm-hw-info")
    dm.ok(*R, "--resultdir", str(tmp_path / "built"), "--rebuild", str(dsc))
    text = (tmp_path / "built/hw_info.log").read_text()
    assert "CPU info:" in text and "Memory:" in text
    dm.ok(*R, "--resultdir", str(tmp_path / "off"), "--disable-plugin", "hw_info", "--rebuild", str(dsc))
    assert (tmp_path / "off/build.log").exists() and not (tmp_path / "off/hw_info.log").exists()
    listing = dm.json(*R, "--list-plugins", "--disable-plugin", "hw_info")
    by_name = {p["name"]: p for p in listing["plugins"]}  # type: ignore[union-attr]
    assert by_name["hw_info"]["enabled"] is False and by_name["bind_mount"]["enabled"] is True
    assert "debmock_mounts" in by_name["tmpfs"]["hooks"]
