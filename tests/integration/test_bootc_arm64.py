"""An arm64 bootc image made on this amd64 host and booted under TCG (extended: longer than CI's budget).

The trixie-arm64 root is bootstrapped through qemu-user (binfmt_misc); the
image's boot packages, dracut and the tools (ostree, mkfs, grub-mkstandalone
for arm64-efi) run as the target's own arm64 binaries the same way. The
commit is made twice, the second time with every stage cache off, and must
have the same checksum; the disk image of it boots in qemu-system-aarch64
(virt, AAVMF) to the login prompt on ttyAMA0.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.conftest import DebMock

pytestmark = [pytest.mark.root, pytest.mark.network, pytest.mark.slow, pytest.mark.qemu, pytest.mark.extended]
CONFIG = """\
templates: [trixie-arm64]
name: trixie-arm64
plugins:
  bootc:
    hostname: dm-arm64
    cache: {cache}
"""
#: seconds: the boot of an emulated arm64 machine under TCG on two host cores
BOOT_TIMEOUT = 1800
#: seconds: the first commit bootstraps the arm64 root and runs apt and dracut through qemu-user (it took more
#: than 15 minutes on this machine while other work ran)
STAGES_TIMEOUT = 2400


def _commit(dm: DebMock, config: Path, repo: Path) -> str:
    result = dm.json("-r", str(config), "--bootc-commit", str(repo), timeout=STAGES_TIMEOUT)
    assert result["exit_code"] == 0, result
    bootc = result["bootc"]
    assert isinstance(bootc, dict)
    return str(bootc["commit"])


def test_an_arm64_image_is_reproducible_and_boots(dm: DebMock, tmp_path: Path) -> None:
    cached, uncached = tmp_path / "cached.yaml", tmp_path / "uncached.yaml"
    cached.write_text(CONFIG.format(cache="true"))
    uncached.write_text(CONFIG.format(cache="false"))
    first = _commit(dm, cached, tmp_path / "repo1")
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert _commit(dm, uncached, tmp_path / "repo2") == first, "a rebuild of every stage gave another commit"

    image = tmp_path / "arm64.qcow2"
    made = dm.json("-r", str(cached), "--bootc-image", str(image), timeout=STAGES_TIMEOUT)
    assert made["exit_code"] == 0, made
    assert isinstance(made["bootc"], dict) and made["bootc"]["commit"] == first

    booted = dm.run("-r", str(cached), "--bootc-run", str(image), "--bootc-run-timeout", str(BOOT_TIMEOUT),
                    timeout=BOOT_TIMEOUT + 120)
    console = booted.stderr
    assert booted.returncode == 0, console[-3000:]
    assert "login prompt after" in console
    assert re.search(r"Linux version \S+ .*aarch64|Machine model: linux,dummy-virt|AArch64", console), \
        "the console shows no arm64 kernel"
    assert "ttyAMA0" in console and "dm-arm64 login:" in console
