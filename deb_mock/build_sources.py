"""Extra apt repositories for one build (sbuild's --extra-repository and --extra-repository-key).

They are written into the build's throw-away layer only, never into the base:
the base's content id stays, the root cache is not rewritten, and the next
build without them sees the archive alone. A build-deps layer made with them
is keyed by them (see :meth:`declaration`). Each repository is one-line
(``deb [options] URI SUITE COMPONENT...``) or a deb822 stanza; keys are
copied to apt's trusted keyring directory of the layer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from deb_mock import apt
from deb_mock.digests import sha256
from deb_mock.errors import UsageError
from deb_mock.sandbox.spec import RUN_DIR

#: where the build's extra sources and keys go inside its layer
ONE_LINE_FILE = "/etc/apt/sources.list.d/deb-mock-build.list"
DEB822_FILE = "/etc/apt/sources.list.d/deb-mock-build.sources"
KEY_DIR = "/etc/apt/trusted.gpg.d"
#: where the key files appear while they are copied in
KEY_MOUNT = f"{RUN_DIR}/keys"


@dataclasses.dataclass(frozen=True)
class BuildSources:
    """The extra repositories and keys of a build."""

    one_line: tuple[str, ...] = ()
    deb822: tuple[str, ...] = ()
    keys: tuple[Path, ...] = ()

    @classmethod
    def parse(cls, entries: Sequence[str], keys: Sequence[Path], origin: str) -> BuildSources:
        """Sort entries into one-line and deb822 ones; a malformed entry or a missing key is exit 5."""
        one_line: list[str] = []
        deb822: list[str] = []
        for entry in entries:
            text = entry.strip()
            if text.startswith(("deb ", "deb-src ")) and "\n" not in text:
                one_line.append(text)
            elif "Types:" in text and "URIs:" in text:
                deb822.append(text)
            else:
                raise UsageError(f"{origin} {entry!r}: not an apt source line ('deb URI SUITE COMPONENT...') "
                                 "nor a deb822 stanza (Types:, URIs:, Suites:)")
        for key in keys:
            if not key.is_file():
                raise UsageError(f"--extra-repository-key {key}: not a file")
        return cls(tuple(one_line), tuple(deb822), tuple(key.resolve() for key in keys))

    def __bool__(self) -> bool:
        return bool(self.one_line or self.deb822)

    def declaration(self) -> list[str]:
        """What the build-deps cache key must cover: every entry and every key's content."""
        digests = [sha256(key.read_bytes()).hexdigest() for key in self.keys]
        return [f"extra repositories {list(self.one_line)} {list(self.deb822)} keys {digests}"]

    def key_names(self) -> list[str]:
        """The name of each key in the layer's keyring directory (armoured keys must end in .asc)."""
        names = []
        for index, key in enumerate(self.keys):
            armoured = key.read_bytes()[:64].lstrip().startswith(b"-----BEGIN PGP")
            names.append(f"deb-mock-build-{index}.{'asc' if armoured else 'gpg'}")
        return names

    def install_command(self) -> list[str]:
        """Write the sources and keys into the layer (run as root in the build's sandbox, with :meth:`environment`).

        The entries come through the environment, never the command line: a
        source may carry credentials (``https://user:password@...``), and the
        files are root's alone (0600) so the build user cannot read them.
        """
        script = (
            'set -e; umask 077\n'
            f'if [ -n "$DEB_MOCK_ONE_LINE" ]; then printf "%s\\n" "$DEB_MOCK_ONE_LINE" > {ONE_LINE_FILE}; fi\n'
            f'if [ -n "$DEB_MOCK_DEB822" ]; then printf "%s\\n" "$DEB_MOCK_DEB822" > {DEB822_FILE}; fi\n'
            f'for name in "$@"; do install -m 644 "{KEY_MOUNT}/$name" "{KEY_DIR}/$name"; done\n'
        )
        return ["/bin/sh", "-c", script, "sh", *self.key_names()]

    def environment(self) -> dict[str, str]:
        """The entries for :meth:`install_command` (the sandbox spec reaches its init on a pipe)."""
        return {"DEB_MOCK_ONE_LINE": "\n".join(self.one_line), "DEB_MOCK_DEB822": "\n\n".join(self.deb822)}

    def update_commands(self) -> list[list[str]]:
        """apt-get update of the extra sources alone (the archive's lists are the base's); any failure is one."""
        commands = []
        for path in ([ONE_LINE_FILE] if self.one_line else []) + ([DEB822_FILE] if self.deb822 else []):
            commands.append([*apt.update_command(strict=True), "-o", f"Dir::Etc::SourceList={path}",
                             "-o", "Dir::Etc::SourceParts=-", "-o", "APT::Get::List-Cleanup=0"])
        return commands
