"""A warm run must start fast: the heavy modules are imported where they are used, not at start-up."""

from __future__ import annotations

import subprocess
import sys

#: each costs 5-15 ms to import (the last seven 1-2 ms) and is needed only by runs that parse .dsc files, write
#: hw_info.log, build images or load a plugin that is not built in (importlib.metadata, with email); PyYAML only
#: parses what is not cached (deb_mock.config.parsed_cache); the build modules only builds need
HEAVY = ("debian.deb822", "debian.changelog", "psutil", "distro", "deb_mock.plugins.bootc.pipeline",
         "importlib.metadata", "email", "yaml", "deb_mock.builder", "deb_mock.source", "deb_mock.result_checks",
         "deb_mock.stage_runner", "deb_mock.base_setup", "deb_mock.build_commands",
         # 1-2 ms each, for rootless runs, typo suggestions, new bases, outboxes and internal errors only
         "platform", "ctypes", "difflib", "uuid", "tempfile", "traceback", "datetime",
         # OpenSSL's libcrypto, 3-7 ms: a warm start's digests come from deb_mock.digests.sha256
         "hashlib", "_hashlib")


def test_cli_and_plugins_load_without_the_heavy_modules() -> None:
    probe = ("import sys\n"
             "from deb_mock import cli\n"
             "from deb_mock.plugin_manager import make_plugin_manager\n"
             "make_plugin_manager()\n"
             f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"imported at start-up: {result.stdout.strip()}"
