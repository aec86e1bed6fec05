"""The bash completion knows every option and --scrub kind, and completes root names and kinds in bash."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from deb_mock import scrub
from deb_mock.cli import build_parser
from deb_mock.plugin_manager import make_plugin_manager

SCRIPT = Path(__file__).resolve().parents[2] / "completions" / "deb-mock"


def _words(variable: str) -> set[str]:
    match = re.search(rf'local {variable}="([^"]*)"', SCRIPT.read_text())
    assert match, f"{variable} not found in {SCRIPT}"
    return set(match.group(1).split())


def test_every_long_option_is_completed() -> None:
    parser = build_parser(make_plugin_manager())
    options = {o for a in parser._actions for o in a.option_strings if o.startswith("--")}
    assert _words("options") == options


def test_every_scrub_kind_is_completed() -> None:
    assert _words("scrub_kinds") == set(scrub.scrub_kinds(make_plugin_manager().hook))


def _complete(words: list[str], tmp_path: Path) -> list[str]:
    """COMPREPLY of the script's function for the command line ``words`` (the cursor on the last word)."""
    line = " ".join(f"'{w}'" for w in words)
    script = (f"source {SCRIPT}; complete -p deb-mock; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; "
              '_deb_mock; printf "%s\\n" "${COMPREPLY[@]}"')
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "DEB_MOCK_SYSCONFDIR": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    result = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True, env=env,
                            cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "complete -o filenames -F _deb_mock deb-mock"
    return [line for line in lines[1:] if line]


@pytest.mark.parametrize(("words", "expected"), [
    (["deb-mock", "-r", "tri"], ["trixie-amd64", "trixie-arm64"]),
    (["deb-mock", "--root", "bookw"], ["bookworm-amd64"]),
    (["deb-mock", "--scrub", "=", "ch"], ["chroot"]),
    (["deb-mock", "--scrub", "=", "chroot,sn"], ["chroot,snapshots"]),
    (["deb-mock", "--isolation", "r"], ["root", "rootless"]),
    (["deb-mock", "--enable-plugin", "cc"], ["ccache"]),
    (["deb-mock", "--keep-f"], ["--keep-failed"]),
])
def test_bash_completes(words: list[str], expected: list[str], tmp_path: Path) -> None:
    assert sorted(_complete(words, tmp_path)) == expected


def test_bash_completes_every_kind_after_scrub_equals(tmp_path: Path) -> None:
    assert set(_complete(["deb-mock", "--scrub", "="], tmp_path)) == set(
        scrub.scrub_kinds(make_plugin_manager().hook))
