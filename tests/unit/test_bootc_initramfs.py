"""The initramfs fingerprint: what dracut reads changes it, what it does not read leaves it alone.

The script runs here with the host's tools over a small tree laid out as an
image; the integration tests reuse a real initramfs and compare the disk
with a cold build's.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from deb_mock.plugins.bootc.initramfs import FINGERPRINT

KVER = "6.12.1-amd64"
OLD, NEW = 1_600_000_000, 1_700_000_000  # package times, and the time of files made when the layer was built


def _file(top: Path, name: str, text: str = "x", mtime: int = OLD) -> Path:
    path = top / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def image(tmp_path: Path) -> Path:
    top = tmp_path / "image"
    _file(top, "usr/lib/dracut/dracut-functions.sh", "require_binaries cryptsetup\ninst /etc/crypttab\n",
          mtime=OLD + 10)
    _file(top, "usr/lib/dracut/modules.d/90kernel-modules/module-setup.sh", "instmods =drivers/ata\n")
    _file(top, f"usr/lib/modules/{KVER}/kernel/ata.ko.xz", "module")
    _file(top, f"usr/lib/modules/{KVER}/modules.dep", "ata.ko.xz:\n", mtime=NEW)
    _file(top, f"usr/lib/modules/{KVER}/initramfs.img", "the old one")
    _file(top, "usr/bin/bash", "bash")
    _file(top, "usr/lib/x86_64-linux-gnu/libc.so.6", "libc")
    _file(top, "usr/lib/udev/rules.d/50-udev-default.rules", "rules")
    _file(top, "etc/machine-id", "random")
    _file(top, "etc/ld.so.cache", "cache")
    _file(top, "etc/ld.so.conf.d/libc.conf", "/usr/local/lib")
    _file(top, "etc/hostname", "image")
    _file(top, "listing", "./usr/bin/bash\nusr/lib/x86_64-linux-gnu/libc.so.6\netc/machine-id\netc/ld.so.cache\n"
          "etc/ld.so.conf.d/libc.conf\netc\n.\n")
    return top


def fingerprint(image: Path) -> str:
    out = subprocess.run(["/bin/sh", "-c", FINGERPRINT, "sh", KVER, str(image / "listing")], check=True,
                         capture_output=True, text=True, env={**os.environ, "DEB_MOCK_IMAGE": str(image)}).stdout
    return out.split()[0]


def test_the_same_image_gives_the_same_fingerprint(image: Path) -> None:
    assert fingerprint(image) == fingerprint(image)


@pytest.mark.parametrize("change", [
    lambda top: _file(top, "usr/bin/bash", "another bash"),                       # a file it copied
    lambda top: _file(top, "usr/lib/x86_64-linux-gnu/libc.so.6", "libc", mtime=OLD + 1),  # its (old) time
    lambda top: (top / "usr/bin/bash").chmod(0o700),                               # its mode
    lambda top: _file(top, f"usr/lib/modules/{KVER}/kernel/new.ko.xz", "module"),  # a module
    lambda top: _file(top, "usr/lib/dracut/modules.d/99x/module-setup.sh", ""),    # a dracut module
    lambda top: _file(top, "etc/dracut.conf.d/omit.conf", "omit_dracutmodules+=' x '"),
    lambda top: _file(top, "usr/sbin/cryptsetup", "a command dracut tests for"),
    lambda top: _file(top, "etc/crypttab", "a file dracut tests for"),
    lambda top: _file(top, "etc/ld.so.conf.d/libc.conf", "/opt/lib"),             # ldconfig's input
    lambda top: _file(top, "usr/lib/udev/rules.d/60-new.rules", "rules installed by pattern"),
], ids=["content", "old-time", "mode", "module", "dracut-module", "dracut-conf", "command", "etc-file", "ld-conf",
                              "udev-rule"])
def test_what_dracut_reads_changes_it(image: Path, change: object) -> None:
    before = fingerprint(image)
    change(image)  # type: ignore[operator]
    assert fingerprint(image) != before


@pytest.mark.parametrize("change", [
    lambda top: _file(top, "usr/games/sl", "a package's command"),
    lambda top: _file(top, "usr/bin/hello", "a command dracut never names"),
    lambda top: _file(top, "usr/lib/x86_64-linux-gnu/libncursesw.so.6", "a library nothing copied needs"),
    lambda top: _file(top, "etc/machine-id", "another random id"),
    lambda top: _file(top, "etc/ld.so.cache", "a cache with one library more", mtime=NEW),
    lambda top: _file(top, f"usr/lib/modules/{KVER}/modules.dep", "ata.ko.xz:\n", mtime=NEW + 60),  # new: epoch
    lambda top: _file(top, f"usr/lib/modules/{KVER}/initramfs.img", "the new one"),
    lambda top: _file(top, "usr/share/doc/sl/copyright", "docs"),
], ids=["games", "unnamed-command", "library", "machine-id", "ld-cache", "new-time", "initramfs", "docs"])
def test_what_dracut_does_not_read_leaves_it(image: Path, change: object) -> None:
    before = fingerprint(image)
    change(image)  # type: ignore[operator]
    assert fingerprint(image) == before


def test_an_image_without_dracut_gives_no_fingerprint(image: Path) -> None:
    (image / "usr/lib/dracut/dracut-functions.sh").unlink()
    result = subprocess.run(["/bin/sh", "-c", FINGERPRINT, "sh", KVER, str(image / "listing")], capture_output=True,
                            text=True, env={**os.environ, "DEB_MOCK_IMAGE": str(image)})
    assert result.returncode != 0 and result.stdout == ""
