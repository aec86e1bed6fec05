"""The image's initramfs: made by dracut, or the last one again when nothing dracut read has changed.

A change to the root (one package) rebuilds the image layer, whose apt run
must see the new root, and dracut then made the very same initramfs again:
10 s of a 55 s re-image here. dracut is deterministic for the options
deb-mock passes (``--reproducible``, ``SOURCE_DATE_EPOCH``), so its output
is a function of what it reads in the image:

- its own modules and configuration, the kernel's modules and the firmware:
  every file's name, type, mode, owner, size, time and content;
- every file it copied in (the last initramfs's listing), the same way,
  but two it replaces: /etc/machine-id (random in every layer; dracut
  writes an empty one) and /etc/ld.so.cache (dracut's ``ldconfig -r``
  makes it anew from the initramfs's libraries and ld.so.conf, which count);
- the names in the directories its modules install from by pattern (udev
  rules, systemd units, modprobe, sysctl, tmpfiles, modules-load);
- which commands and configuration files exist, for the checks of its
  modules: names in PATH's directories, /etc and /usr/local/lib whose base
  name appears anywhere in dracut's own scripts (a file whose name dracut
  never mentions is not one it tests for).

Times follow dracut's own rule: ``--reproducible`` sets every file newer
than dracut-functions.sh to the epoch, so only older times count. The
fingerprint of all that is computed in the image (a sandbox on the layer
being built) by the script below, with the image's own tools; when it
equals the one recorded beside the cached initramfs, and the kernel, the
epoch and the options are the same, the cached file is copied in and dracut
does not run. Anything the script cannot read makes a fingerprint that
matches nothing: dracut runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from deb_mock.errors import RootError
from deb_mock.sandbox.spec import Bind, RootFs

from .image_layers import digest_of
from .stage_dirs import StageDirs

if TYPE_CHECKING:
    from deb_mock.services import RootServices

#: bump when the fingerprint's inputs change, so that no older fingerprint matches
FINGERPRINT_FORMAT = 3
#: where the cached initramfs and its listing appear in the sandbox
IN_CACHE = "/deb-mock/initramfs"
#: $1 the kernel version, $2 the listing (written from the image's initramfs when it is empty); prints one digest
FINGERPRINT = r"""
set -eu
cd "${DEB_MOCK_IMAGE:-/}"  # the image is the sandbox's root; another directory only in the unit tests
kver=$1 listing=$2
ref=usr/lib/dracut/dracut-functions.sh
img=usr/lib/modules/$kver/initramfs.img
[ -f "$ref" ]
if [ ! -s "$listing" ]; then
  /usr/lib/dracut/skipcpio "$img" | zstd -dcq | cpio --quiet -it > "$listing"
fi
describe() {  # NUL-separated: name, type, mode, owner, size, time (or "new"), link target
  find "$@" -xdev ! -type d ! -path "$img" \( -newer "$ref" \
    -printf '%p\t%y\t%m\t%U:%G\t%s\tnew\t%l\0' -o -printf '%p\t%y\t%m\t%U:%G\t%s\t%T@\t%l\0' \) 2>/dev/null || true
}
contents() { find "$@" -xdev -type f ! -path "$img" -print0 2>/dev/null | sort -z | xargs -0r sha256sum; }
own="usr/lib/dracut etc/dracut.conf etc/dracut.conf.d usr/lib/modules/$kver usr/lib/firmware"
patterns="usr/lib/udev etc/udev usr/lib/systemd etc/systemd usr/lib/modprobe.d etc/modprobe.d
  usr/lib/sysctl.d etc/sysctl.d usr/lib/tmpfiles.d etc/tmpfiles.d usr/lib/modules-load.d etc/modules-load.d"
words=$(mktemp -p /dev/shm)  # the sandbox's own tmpfs: nothing written into the image
find usr/lib/dracut -xdev -type f -print0 | xargs -0r grep -ohaE '[[:alnum:]_.+-]+' | sort -u > "$words"
# not inputs though listed: etc/machine-id (random in every layer; dracut writes an empty one of its own) and
# etc/ld.so.cache (dracut's ldconfig -r makes it anew from the initramfs's own libraries and ld.so.conf)
listed() { sed 's|^\./||; /^\.\?$/d; /^etc\/machine-id$/d; /^etc\/ld\.so\.cache$/d' "$listing" | tr '\n' '\0'; }
{
  # shellcheck disable=SC2086
  describe $own | sort -z
  # shellcheck disable=SC2086
  contents $own
  echo listed
  listed | xargs -0r sh -c 'find "$@" -maxdepth 0 ! -type d \( -newer "$0" \
    -printf "%p\t%y\t%m\t%U:%G\t%s\tnew\t%l\0" -o -printf "%p\t%y\t%m\t%U:%G\t%s\t%T@\t%l\0" \) 2>/dev/null || true' \
    "$ref" | sort -z
  listed | xargs -0r sh -c 'find "$@" -maxdepth 0 -type f -print0 2>/dev/null || true' sh | sort -z \
    | xargs -0r sha256sum
  echo patterns
  # shellcheck disable=SC2086
  find $patterns -xdev -printf '%p\t%y\0' 2>/dev/null | sort -z || true
  echo names
  find usr/bin usr/sbin usr/local/bin usr/local/sbin usr/local/lib etc -xdev -printf '%f\t%p\t%y\n' 2>/dev/null \
    | awk -F '\t' 'NR == FNR { known[$0]; next } $1 in known' "$words" - | sort || true
} | sha256sum
rm -f "$words"
"""


class InitramfsCache:
    """The last initramfs made by dracut, its listing and its inputs' fingerprint (``<bootc>/initramfs/<key>``)."""

    def __init__(self, root: RootServices, stages: StageDirs, env: dict[str, str]) -> None:
        self.root = root
        self.stages = stages
        self.env = env

    def reuse(self, image: RootFs, kver: str, options: tuple[str, ...], epoch: int) -> bool:
        """Copy the cached initramfs into ``image`` (the layer being built) if dracut would make it again."""
        for entry in sorted(self.stages.directory.iterdir()) if self.stages.directory.is_dir() else ():
            info = self.stages.finished(entry.name)
            if info is None or info.get("what") != digest_of(FINGERPRINT_FORMAT, kver, options, epoch):
                continue
            if self._fingerprint(image, kver, entry, readonly=True) != info.get("fingerprint"):
                return False
            self.root.checked_run(["cp", "--preserve=mode,timestamps", f"{IN_CACHE}/initramfs.img",
                                   f"/usr/lib/modules/{kver}/initramfs.img"], "bootc-initramfs", root_fs=image,
                                  network=False, mounts=[Bind(str(entry), IN_CACHE)], env=self.env)
            return True
        return False

    def remember(self, image: RootFs, kver: str, options: tuple[str, ...], epoch: int) -> None:
        """Keep the initramfs dracut just made in ``image``, with its listing and its inputs' fingerprint."""
        what = digest_of(FINGERPRINT_FORMAT, kver, options, epoch)
        work = self.stages.fresh(what)
        (work / "listing").write_bytes(b"")
        fingerprint = self._fingerprint(image, kver, work, readonly=False)
        if fingerprint is None:
            return  # unreadable: nothing to reuse later, dracut will run
        self.root.checked_run(["cp", "--preserve=mode,timestamps", f"/usr/lib/modules/{kver}/initramfs.img",
                               f"{IN_CACHE}/initramfs.img"], "bootc-initramfs", root_fs=image, network=False,
                              mounts=[Bind(str(work), IN_CACHE, readonly=False)], env=self.env)
        self.stages.finish(work, {"what": what, "fingerprint": fingerprint, "kver": kver, "epoch": epoch})

    def _fingerprint(self, image: RootFs, kver: str, entry: Path, *, readonly: bool) -> str | None:
        """The digest the script prints in ``image``; None when it fails (then nothing is reused).

        ``entry`` holds the listing; only a new entry (``readonly`` false) gets it written, from the image's
        own initramfs.
        """
        try:
            lines = self.root.checked_run(["/bin/sh", "-c", FINGERPRINT, "sh", kver, f"{IN_CACHE}/listing"],
                                          "bootc-initramfs", root_fs=image, network=False,
                                          mounts=[Bind(str(entry), IN_CACHE, readonly=readonly)], env=self.env)
        except RootError:
            return None
        found = re.search(r"\b([0-9a-f]{64})\s+-", "\n".join(lines))
        return found.group(1) if found else None
