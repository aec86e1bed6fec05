"""The man pages stay in step with the code: every option, config key and exit code is documented.

deb-mock(1) must describe every command-line flag the parser defines and every
exit code of ``ExitCode``; deb-mock.yaml(5) every key of the config schema and
of the built-in plugins' sections. Both pages must render without a warning.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import re
import shutil
import subprocess
import typing
from pathlib import Path

import pytest

from deb_mock.cli import build_parser
from deb_mock.config.schema import Config, HooksConfig, SandboxConfig
from deb_mock.errors import ExitCode
from deb_mock.plugin_manager import BUILTIN_PLUGINS, make_plugin_manager

MAN_DIR = Path(__file__).resolve().parents[2] / "man"
COMMAND_PAGE = MAN_DIR / "deb-mock.1"
CONFIG_PAGE = MAN_DIR / "deb-mock.yaml.5"
PAGES = (COMMAND_PAGE, CONFIG_PAGE)
#: argparse group title -> the section of deb-mock.1 that documents its options
SECTION_OF_GROUP = {"modes (one per run)": "MODES", "options": "OPTIONS", "build options": "BUILD OPTIONS"}
#: the only host names a page may show: placeholders, never a real archive
ALLOWED_HOSTS = {"mirror.example", "proxy.example", "127.0.0.1", "localhost"}

_FONT = re.compile(r"\\f(?:\[[^\]]*\]|\(..|.)")
_ESCAPES = re.compile(r"\\[&%c]")


def plain(text: str) -> str:
    """Roff source as the words a reader sees: ``\\-`` is ``-``, font changes are gone."""
    text = text.replace("\\-", "-").replace("\\(aq", "'").replace("\\(dq", '"').replace("\\e", "\\")
    text = _FONT.sub("", text)
    return _ESCAPES.sub("", text)


def sections(path: Path) -> dict[str, list[str]]:
    """The page's lines by ``.SH`` section (names without quotes)."""
    result: dict[str, list[str]] = {}
    current = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(".SH "):
            current = line[4:].strip().strip('"')
            result[current] = []
        elif current:
            result[current].append(line)
    return result


def tags(lines: list[str]) -> list[str]:
    """The plain text of every ``.TP`` or ``.TQ`` tag (the line after it), macro names dropped."""
    found = []
    for before, line in itertools.pairwise(lines):
        if before.strip() in (".TP", ".TQ") or before.startswith(".TP "):
            if line.startswith("."):
                line = line.split(None, 1)[1] if " " in line else ""
            found.append(plain(line).replace('"', "").strip())
    return found


def tag_words(lines: list[str]) -> set[str]:
    """Every word of every tag, punctuation around options and keys removed."""
    words = set()
    for tag in tags(lines):
        for word in re.split(r"[\s,|]+", tag):
            word = word.strip("()[];:")
            if word:
                words.add(word.split("=", 1)[0])
    return words


def long_options() -> list[tuple[str, str]]:
    """(option, argparse group title) for every long option of the parser (built-in plugins' too), --help aside."""
    parser = build_parser(make_plugin_manager())
    group_of = {id(a): g.title or "" for g in parser._action_groups for a in g._group_actions}
    return [
        (option, group_of.get(id(action), ""))
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    ]


def test_pages_exist_with_a_name_line() -> None:
    for page, name in ((COMMAND_PAGE, "deb-mock"), (CONFIG_PAGE, "deb-mock.yaml")):
        text = page.read_text(encoding="utf-8")
        assert text.count(".TH ") == 1, f"{page.name}: one .TH"
        name_lines = sections(page)["NAME"]
        assert plain(name_lines[0]).startswith(f"{name} - "), f"{page.name}: NAME must read '{name} \\- ...'"


@pytest.mark.parametrize(("option", "group"), long_options())
def test_every_long_option_is_in_deb_mock_1(option: str, group: str) -> None:
    text = plain(COMMAND_PAGE.read_text(encoding="utf-8"))
    assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), f"{option} is not in deb-mock.1"
    found = sections(COMMAND_PAGE)
    section = SECTION_OF_GROUP.get(group)
    if section is None:  # a group added by a plugin: any section of options will do
        documented = set().union(*(tag_words(found.get(s, [])) for s in SECTION_OF_GROUP.values()))
    else:
        documented = tag_words(found.get(section, []))
    assert option in documented, f"{option} has no .TP entry in the {section or 'options'} section of deb-mock.1"


def test_every_short_option_has_an_entry() -> None:
    parser = build_parser()
    found = sections(COMMAND_PAGE)
    documented = set().union(*(tag_words(found.get(s, [])) for s in SECTION_OF_GROUP.values()))
    short = [o for a in parser._actions for o in a.option_strings if not o.startswith("--")]
    assert short, "the parser has short options"
    missing = [o for o in short if o not in documented]
    assert not missing, f"short options without an entry in deb-mock.1: {missing}"


@pytest.mark.parametrize("code", list(ExitCode), ids=lambda c: f"{c.name}={int(c)}")
def test_every_exit_code_is_in_exit_status(code: ExitCode) -> None:
    exit_status = sections(COMMAND_PAGE)["EXIT STATUS"]
    assert str(int(code)) in tag_words(exit_status), f"exit code {int(code)} ({code.name}) is not in EXIT STATUS"


def test_required_sections_of_deb_mock_1() -> None:
    wanted = ["NAME", "SYNOPSIS", "DESCRIPTION", "MODES", "OPTIONS", "BUILD OPTIONS", "FILES", "ENVIRONMENT",
              "EXIT STATUS", "LOCKING", "JSON OUTPUT", "EXAMPLES", "SEE ALSO"]
    found = [s for s in sections(COMMAND_PAGE) if s in wanted]
    assert found == wanted, f"deb-mock.1 sections: expected {wanted}, found {found}"


def test_json_keys_and_environment_are_documented() -> None:
    found = sections(COMMAND_PAGE)
    json_keys = tag_words(found["JSON OUTPUT"])
    for key in ("status", "exit_code", "root", "mode", "durations", "artifacts", "config_digest",
                "resultdir", "error"):
        assert key in json_keys, f"JSON key {key} is not described in deb-mock.1"
    environment = tag_words(found["ENVIRONMENT"])
    for variable in ("DEB_MOCK_DISABLE_PLUGINS", "DEB_MOCK_SYSCONFDIR", "XDG_CONFIG_HOME"):
        assert variable in environment, f"{variable} is not in ENVIRONMENT"
    see_also = "".join(re.sub(r"^\.\w+\s+", "", plain(line)) for line in found["SEE ALSO"])
    see_also = re.sub(r"\s+\(", "(", see_also)
    for page in ("deb-mock.yaml(5)", "mmdebstrap(1)", "sbuild(1)", "mock(1)"):
        assert re.search(rf"(?<![\w.-]){re.escape(page)}", see_also), f"SEE ALSO lacks {page}"


def _config_tags() -> set[str]:
    return {tag.split()[0] for tag in tags(CONFIG_PAGE.read_text(encoding="utf-8").splitlines()) if tag}


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(Config)])
def test_every_config_key_is_in_deb_mock_yaml_5(field: str) -> None:
    assert field in _config_tags(), f"config key '{field}' has no .TP entry in deb-mock.yaml.5"


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(SandboxConfig)])
def test_every_sandbox_key_is_in_deb_mock_yaml_5(field: str) -> None:
    documented = _config_tags()
    assert f"sandbox.{field}" in documented or field in documented, (
        f"config key 'sandbox.{field}' has no .TP entry in deb-mock.yaml.5"
    )


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(HooksConfig)])
def test_every_hooks_key_is_in_deb_mock_yaml_5(field: str) -> None:
    assert f"hooks.{field}" in _config_tags(), f"config key 'hooks.{field}' has no .TP entry in deb-mock.yaml.5"


def _dataclass_keys(cls: type, prefix: str) -> list[tuple[str, str]]:
    """(dotted key, bare key) of a plugin section, the keys of its lists of mappings included."""
    keys: list[tuple[str, str]] = []
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        dotted = f"{prefix}.{field.name}"
        keys.append((dotted, field.name))
        for arg in typing.get_args(hints[field.name]):
            if dataclasses.is_dataclass(arg) and isinstance(arg, type):
                keys.extend(_dataclass_keys(arg, dotted))
    return keys


def _plugin_keys() -> list[tuple[str, str, str]]:
    """(plugin, dotted key, bare key) of every built-in plugin's config section."""
    keys: list[tuple[str, str, str]] = []
    for module_name in BUILTIN_PLUGINS:
        module = importlib.import_module(module_name)
        for name, section in module.debmock_config_sections().items():
            keys.extend((name, dotted, bare) for dotted, bare in _dataclass_keys(section, f"plugins.{name}"))
    return keys


def _subsection(lines: list[str], title: str) -> list[str]:
    """The lines of the ``.SS title`` subsection."""
    result: list[str] = []
    inside = False
    for line in lines:
        if line.startswith(".SS "):
            inside = plain(line[4:]).strip().strip('"') == title
        elif inside:
            result.append(line)
    return result


@pytest.mark.parametrize(("plugin", "dotted", "bare"), _plugin_keys(), ids=lambda v: v)
def test_every_builtin_plugin_key_is_in_deb_mock_yaml_5(plugin: str, dotted: str, bare: str) -> None:
    lines = _subsection(sections(CONFIG_PAGE)["PLUGINS"], plugin)
    assert lines, f"deb-mock.yaml.5 has no '.SS {plugin}' subsection under PLUGINS"
    documented = {tag.split()[0] for tag in tags(lines) if tag}
    assert dotted in documented or bare in documented, (
        f"plugin key '{dotted}' has no .TP entry in the {plugin} subsection of deb-mock.yaml.5"
    )


def test_the_config_page_says_where_the_mirror_comes_from() -> None:
    text = plain(CONFIG_PAGE.read_text(encoding="utf-8"))
    assert "No mirror is written" in " ".join(text.split()), "deb-mock.yaml.5 must say that no mirror is shipped"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_real_archive_host_is_named(page: Path) -> None:
    text = plain(page.read_text(encoding="utf-8"))
    assert "debian.org" not in text, f"{page.name} names a debian.org host; use mirror.example"
    hosts = set(re.findall(r"://([^/\s:'\"\]]+)", text))
    assert hosts <= ALLOWED_HOSTS, f"{page.name} names hosts {sorted(hosts - ALLOWED_HOSTS)}"


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_renders_without_warnings(page: Path) -> None:
    for device in ("utf8", "ascii"):
        result = subprocess.run(
            ["groff", "-man", f"-T{device}", "-ww", "-z", str(page)],
            capture_output=True, text=True, check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr == "", f"groff -T{device} warns about {page.name}:\n{result.stderr}"
