"""Where the bundled configuration lives, in a wheel and in a source checkout.

The brief keeps ``etc/`` and ``chroot-configs/`` at the top of the repository;
pyproject maps them into ``deb_mock/data/`` in a wheel. The Debian package moves
the chroot configs to /usr/share/deb-mock. An editable install or a plain
checkout finds them beside the package instead.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_SOURCE_TREE = _PACKAGE.parent
#: where the Debian package puts the chroot configs (data, not code)
_SHARE = Path("/usr/share/deb-mock")


def _first_dir(*candidates: Path) -> Path:
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[-1]


def bundled_etc_dir() -> Path:
    """The shipped site-defaults and default config."""
    return _first_dir(_PACKAGE / "data" / "etc", _SOURCE_TREE / "etc" / "deb-mock")


def bundled_chroot_configs_dir() -> Path:
    """The shipped chroot configs (one YAML per root)."""
    return _first_dir(_PACKAGE / "data" / "chroot_configs", _SHARE / "chroot-configs", _SOURCE_TREE / "chroot-configs")


def system_config_dir() -> Path:
    """/etc/deb-mock, or ``$DEB_MOCK_SYSCONFDIR`` (tests and relocated installs)."""
    return Path(os.environ.get("DEB_MOCK_SYSCONFDIR", "/etc/deb-mock"))


def user_config_file() -> Path:
    """~/.config/deb-mock/config.yaml, honouring ``$XDG_CONFIG_HOME``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "deb-mock" / "config.yaml"
