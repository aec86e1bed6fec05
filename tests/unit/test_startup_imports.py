"""A warm run must start fast: the heavy modules are imported where they are used, not at start-up."""

from __future__ import annotations

import subprocess
import sys

#: each costs 5-15 ms to import and is needed only by runs that parse .dsc files, write hw_info.log, build images
#: or load a plugin that is not built in (importlib.metadata, with email)
HEAVY = ("debian.deb822", "debian.changelog", "psutil", "distro", "deb_mock.plugins.bootc.pipeline",
         "importlib.metadata", "email")


def test_cli_and_plugins_load_without_the_heavy_modules() -> None:
    probe = ("import sys\n"
             "from deb_mock import cli\n"
             "from deb_mock.plugin_manager import make_plugin_manager\n"
             "make_plugin_manager()\n"
             f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"imported at start-up: {result.stdout.strip()}"
