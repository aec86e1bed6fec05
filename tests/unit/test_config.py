"""deb_mock.config: layered YAML, templates, strict keys and types, origins."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from deb_mock.config import Override, describe, load_config
from deb_mock.config.loader import BUILTIN
from deb_mock.config.locate import list_configs, resolve_root_config
from deb_mock.config.yamlsource import load_yaml_layer, parse_option_value, set_dotted
from deb_mock.errors import ConfigError, ExitCode
from deb_mock.plugin_manager import DISABLE_ENV, config_sections, make_plugin_manager

BUNDLED_ROOTS = ("bookworm-amd64", "sid-amd64", "trixie-amd64", "trixie-arm64")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No /etc/deb-mock and no ~/.config/deb-mock: only what a test writes."""
    sysconf = tmp_path / "sysconf"
    sysconf.mkdir()
    monkeypatch.setenv("DEB_MOCK_SYSCONFDIR", str(sysconf))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    return sysconf


@pytest.fixture(scope="module")
def sections() -> dict[str, type]:
    return config_sections(make_plugin_manager())


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load_error(root: str | None, sections: dict[str, type], overrides: list[Override] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(root, list(overrides), sections)
    assert info.value.exit_code == ExitCode.CONFIG
    return str(info.value)


# -- layering -------------------------------------------------------------------------------


def test_layers_merge_in_documented_order(
    tmp_path: Path, isolated: Path, sections: dict[str, type]
) -> None:
    write(isolated / "site-defaults.yaml", """
        description: from site
        suite: s-site
        variant: v-site
        architecture: a-site
        build_user: u-site
        sandbox:
          hostname: site-host
    """)
    write(tmp_path / "cfg" / "base.yaml", """
        suite: s-template
        variant: v-template
        architecture: a-template
        build_user: u-template
    """)
    root = write(tmp_path / "cfg" / "myroot.yaml", """
        templates: [base]
        variant: v-root
        architecture: a-root
        build_user: u-root
        sandbox:
          sys: none
    """)
    write(tmp_path / "xdg" / "deb-mock" / "config.yaml", """
        architecture: a-user
        build_user: u-user
    """)
    loaded = load_config(
        str(root), [Override("build_user", "u-cli", "--config-opts build_user=u-cli")], sections
    )
    config = loaded.config
    assert config.description == "from site"
    assert config.suite == "s-template"
    assert config.variant == "v-root"
    assert config.architecture == "a-user"
    assert config.build_user == "u-cli"
    assert config.basedir == "/var/lib/deb-mock"
    # mappings are merged key by key, not replaced
    assert config.sandbox.hostname == "site-host"
    assert config.sandbox.sys == "none"

    origins = loaded.merged.origins
    assert origins[("description",)] == f"{isolated / 'site-defaults.yaml'}:1"
    assert origins[("suite",)] == f"{tmp_path / 'cfg' / 'base.yaml'}:1"
    assert origins[("variant",)] == f"{root.resolve()}:2"
    assert origins[("architecture",)] == f"{tmp_path / 'xdg' / 'deb-mock' / 'config.yaml'}:1"
    assert origins[("build_user",)] == "--config-opts build_user=u-cli"
    assert origins[("basedir",)] == BUILTIN
    assert loaded.config_file == root.resolve()


def test_lists_are_replaced_whole(tmp_path: Path, sections: dict[str, type]) -> None:
    write(tmp_path / "base.yaml", "packages: [a, b, c]\ncomponents: [main, contrib]\n")
    root = write(tmp_path / "r.yaml", "templates: [base]\npackages: [d]\n")
    config = load_config(str(root), [], sections).config
    assert config.packages == ("d",)
    assert config.components == ("main", "contrib")


def test_default_config_is_trixie_amd64(sections: dict[str, type]) -> None:
    loaded = load_config(None, [], sections)
    assert loaded.config.name == "trixie-amd64"
    assert loaded.config.suite == "trixie"
    assert loaded.config.architecture == "amd64"
    assert loaded.config_file.name == "default.yaml"


@pytest.mark.parametrize("name", BUNDLED_ROOTS)
def test_bundled_configs_load(name: str, sections: dict[str, type]) -> None:
    loaded = load_config(name, [], sections)
    suite, arch = name.split("-")
    assert loaded.config.name == name
    assert loaded.config.suite == suite
    assert loaded.config.architecture == arch
    assert loaded.config.mirror is None
    assert loaded.config.variant == "buildd"


def test_system_config_dir_wins_over_bundled(isolated: Path, sections: dict[str, type]) -> None:
    write(isolated / "trixie-amd64.yaml", "suite: forky\n")
    loaded = load_config("trixie-amd64", [], sections)
    assert loaded.config_file == isolated / "trixie-amd64.yaml"
    assert loaded.config.suite == "forky"


# -- templates ------------------------------------------------------------------------------


def test_templates_nest_and_later_templates_win(tmp_path: Path, sections: dict[str, type]) -> None:
    write(tmp_path / "grand.yaml", "suite: s-grand\nvariant: v-grand\narchitecture: a-grand\n")
    write(tmp_path / "parent.yaml", "templates: [grand]\nvariant: v-parent\n")
    write(tmp_path / "templates" / "other.yaml", "architecture: a-other\n")
    root = write(tmp_path / "r.yaml", "templates: [parent, other.yaml]\n")
    loaded = load_config(str(root), [], sections)
    assert loaded.config.suite == "s-grand"
    assert loaded.config.variant == "v-parent"
    assert loaded.config.architecture == "a-other"
    assert loaded.config.templates == ()
    assert "templates" not in loaded.merged.data


def test_templates_as_single_string(tmp_path: Path, sections: dict[str, type]) -> None:
    write(tmp_path / "base.yaml", "suite: bookworm\n")
    root = write(tmp_path / "r.yaml", "templates: base\n")
    assert load_config(str(root), [], sections).config.suite == "bookworm"


def test_bundled_template_found_from_anywhere(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "r.yaml", "templates: [debian]\nsuite: sid\n")
    loaded = load_config(str(root), [], sections)
    assert loaded.config.build_user == "build"
    assert loaded.merged.origins[("build_user",)].endswith("templates/debian.yaml:7")


def test_template_loop_is_an_error(tmp_path: Path, sections: dict[str, type]) -> None:
    write(tmp_path / "a.yaml", "templates: [b]\n")
    write(tmp_path / "b.yaml", "templates: [a]\n")
    message = load_error(str(tmp_path / "a.yaml"), sections)
    assert "loop" in message
    assert "a.yaml" in message and "b.yaml" in message


def test_template_including_itself_is_an_error(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "self.yaml", "templates: [self]\n")
    message = load_error(str(root), sections)
    assert "loop" in message
    assert str(root.resolve()) in message


def test_template_loop_through_another_spelling_is_an_error(
    tmp_path: Path, sections: dict[str, type]
) -> None:
    # the same file named through '..': still a loop, and must be reported as one
    root = write(tmp_path / "x" / "a.yaml", "templates: ['../x/a']\n")
    with pytest.raises(Exception) as info:
        load_config(str(root), [], sections)
    error = info.value
    assert isinstance(error, ConfigError), (
        f"template loop not detected: {type(error).__name__}: {str(error)[:100]}..."
    )
    assert "loop" in str(error)


def test_missing_template_names_including_file(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "r.yaml", "templates: [nowhere]\n")
    message = load_error(str(root), sections)
    assert str(root.resolve()) in message
    assert "'nowhere'" in message


def test_templates_of_wrong_type(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "r.yaml", "suite: trixie\ntemplates: 3\n")
    message = load_error(str(root), sections)
    assert f"{root.resolve()}:2" in message
    assert "templates" in message


# -- unknown keys, wrong types, bad YAML -------------------------------------------------


def test_unknown_key_names_file_line_key_and_suggestion(
    tmp_path: Path, sections: dict[str, type]
) -> None:
    root = write(tmp_path / "r.yaml", "suite: trixie\narchitecure: amd64\n")
    message = load_error(str(root), sections)
    assert f"{root.resolve()}:2" in message
    assert "'architecure'" in message
    assert "unknown key" in message
    assert "did you mean 'architecture'" in message


def test_unknown_key_without_close_match_has_no_suggestion(
    tmp_path: Path, sections: dict[str, type]
) -> None:
    root = write(tmp_path / "r.yaml", "zzzzqqq: 1\n")
    message = load_error(str(root), sections)
    assert f"{root.resolve()}:1" in message
    assert "'zzzzqqq'" in message
    assert "did you mean" not in message


def test_unknown_nested_key(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "r.yaml", "sandbox:\n  sys: ro\n  hostnme: x\n")
    message = load_error(str(root), sections)
    assert f"{root.resolve()}:3" in message
    assert "'sandbox.hostnme'" in message
    assert "did you mean 'hostname'" in message


@pytest.mark.parametrize(
    ("line", "key", "expected"),
    [
        ("variant: 3", "variant", "a string"),
        ("components: main", "components", "a list"),
        ('offline: "yes"', "offline", "true or false"),
        ("build_uid: '1000'", "build_uid", "an integer"),
        ("lock_timeout: soon", "lock_timeout", "a number"),
        ("sandbox: ro", "sandbox", "a mapping"),
        ("sandbox:\n  sys: rw", "sandbox.sys", "'rw' is not one of"),
    ],
)
def test_wrong_type_names_file_line_and_key(
    tmp_path: Path, sections: dict[str, type], line: str, key: str, expected: str
) -> None:
    root = write(tmp_path / "r.yaml", f"suite: trixie\n{line}\n")
    message = load_error(str(root), sections)
    lineno = 2 + line.count("\n")
    assert f"{root.resolve()}:{lineno}" in message
    assert f"'{key}'" in message
    assert expected in message


def test_wrong_type_of_list_item_names_file_and_line(
    tmp_path: Path, sections: dict[str, type]
) -> None:
    root = write(tmp_path / "r.yaml", "suite: trixie\npackages: [hello, 3]\n")
    message = load_error(str(root), sections)
    assert "packages" in message
    assert "a string" in message
    assert f"{root.resolve()}:2" in message


def test_yes_unquoted_is_a_boolean(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "r.yaml", "offline: yes\ndeb_src: true\n")
    config = load_config(str(root), [], sections).config
    assert config.offline is True
    assert config.deb_src is True


def test_sandbox_network_false_as_written_in_the_readme(
    tmp_path: Path, sections: dict[str, type]
) -> None:
    # README: "... unless --offline or `sandbox.network: false`"; YAML's off is false too
    for text in ("false", "off"):
        root = write(tmp_path / "r.yaml", f"sandbox:\n  network: {text}\n")
        assert load_config(str(root), [], sections).config.sandbox.network is False


def test_sandbox_network_string_is_a_type_error(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "r.yaml", "sandbox:\n  network: 'host'\n")
    message = load_error(str(root), sections)
    assert f"{root.resolve()}:2" in message and "sandbox.network" in message


def test_null_for_optional_and_integer_for_float(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "r.yaml", "mirror: null\nlock_timeout: 5\n")
    config = load_config(str(root), [], sections).config
    assert config.mirror is None
    assert config.lock_timeout == 5.0
    assert isinstance(config.lock_timeout, float)


def test_invalid_yaml_names_file_and_line(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "r.yaml", "suite: trixie\n  variant: buildd\n")
    message = load_error(str(root), sections)
    assert f"{root.resolve()}:2" in message
    assert "invalid YAML" in message


def test_top_level_must_be_a_mapping(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "r.yaml", "- suite\n- trixie\n")
    message = load_error(str(root), sections)
    assert f"{root.resolve()}:1" in message
    assert "mapping" in message


def test_non_string_key_is_an_error(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "r.yaml", "suite: trixie\n3: x\n")
    message = load_error(str(root), sections)
    assert f"{root.resolve()}:2" in message


def test_duplicate_keys_are_an_error(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "r.yaml", "suite: trixie\nvariant: a\nsuite: sid\n")
    message = load_error(str(root), sections)
    assert f"{root.resolve()}:3" in message
    assert "'suite'" in message
    assert "twice" in message


def test_duplicate_nested_keys_are_an_error(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "r.yaml", "sandbox:\n  sys: ro\n  sys: none\n")
    message = load_error(str(root), sections)
    assert f"{root.resolve()}:3" in message
    assert "'sandbox.sys'" in message


def test_missing_file_given_by_path(tmp_path: Path, sections: dict[str, type]) -> None:
    missing = tmp_path / "nope.yaml"
    message = load_error(str(missing), sections)
    assert str(missing) in message
    assert "not found" in message


def test_load_yaml_layer_of_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_yaml_layer(tmp_path / "absent.yaml")


def test_empty_file_is_an_empty_layer(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "empty-root.yaml", "# nothing\n")
    assert load_yaml_layer(root).data == {}
    assert load_config(str(root), [], sections).config.name == "empty-root"


# -- -r NAME ----------------------------------------------------------------------------------


def test_unknown_root_name_lists_known_and_suggests(sections: dict[str, type]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("trixie-amd46", [], sections)
    error = info.value
    assert "'trixie-amd46'" in error.message
    assert error.hint is not None
    assert "did you mean 'trixie-amd64'" in error.hint
    for name in BUNDLED_ROOTS:
        assert name in error.hint
    assert "hint:" in str(error)


def test_unknown_root_name_without_close_match(sections: dict[str, type]) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_root_config("qqqqqqqqqqqq")
    assert info.value.hint is not None
    assert "did you mean" not in info.value.hint
    assert "trixie-amd64" in info.value.hint


def test_list_configs_includes_system_configs_and_skips_non_roots(isolated: Path) -> None:
    write(isolated / "mybox.yaml", "description: my box\n")
    write(isolated / "site-defaults.yaml", "{}\n")
    write(isolated / "default.yaml", "{}\n")
    entries = {entry.name: entry for entry in list_configs()}
    assert set(BUNDLED_ROOTS) <= set(entries)
    assert entries["mybox"].description == "my box"
    assert entries["mybox"].path == isolated / "mybox.yaml"
    assert "site-defaults" not in entries
    assert "default" not in entries
    assert entries["trixie-amd64"].description.startswith("Debian 13")
    assert [e.name for e in list_configs()] == sorted(entries)


# -- plugins sections -------------------------------------------------------------------


def test_plugin_sections_are_typed(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "r.yaml", """
        plugins:
          tmpfs:
            enabled: true
            mounts:
              - {target: /build, size: 4G}
          bind_mount:
            mounts:
              - {source: /srv, target: /srv, readonly: false}
    """)
    config = load_config(str(root), [], sections).config
    tmpfs = config.plugin("tmpfs")
    assert tmpfs.enabled is True
    assert [(m.target, m.size) for m in tmpfs.mounts] == [("/build", "4G")]
    bind = config.plugin("bind_mount")
    assert [(m.source, m.target, m.readonly) for m in bind.mounts] == [("/srv", "/srv", False)]
    assert config.plugin("hw_info").enabled is True
    assert set(config.plugins) == {"tmpfs", "bind_mount", "hw_info", "lintian", "chroot_scan", "root_cache",
                                   "apt_cache", "ccache", "bootc"}


def test_unknown_plugin_is_an_error(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "r.yaml", "suite: trixie\nplugins:\n  tmpfz:\n    enabled: true\n")
    message = load_error(str(root), sections)
    assert f"{root.resolve()}:3" in message
    assert "'plugins.tmpfz'" in message
    assert "unknown plugin" in message
    assert "tmpfs" in message


def test_unknown_plugin_key_is_an_error(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "r.yaml", "plugins:\n  tmpfs:\n    enabeld: true\n")
    message = load_error(str(root), sections)
    assert f"{root.resolve()}:3" in message
    assert "'plugins.tmpfs.enabeld'" in message
    assert "did you mean 'enabled'" in message


def test_plugin_key_of_wrong_type(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "r.yaml", "plugins:\n  hw_info:\n    enabled: 'no'\n")
    message = load_error(str(root), sections)
    assert f"{root.resolve()}:3" in message
    assert "'plugins.hw_info.enabled'" in message


def test_plugins_must_be_a_mapping(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "r.yaml", "plugins: [tmpfs]\n")
    message = load_error(str(root), sections)
    assert f"{root.resolve()}:1" in message
    assert "'plugins'" in message


def test_error_in_plugin_list_entry_names_file_and_line(
    tmp_path: Path, sections: dict[str, type]
) -> None:
    root = write(tmp_path / "r.yaml", """
        plugins:
          bind_mount:
            mounts:
              - {source: /srv}
    """)
    message = load_error(str(root), sections)
    assert "target" in message
    assert "required key is missing" in message
    assert str(root.resolve()) in message


def test_plugin_without_section_in_config_gets_defaults(sections: dict[str, type]) -> None:
    config = load_config("trixie-amd64", [], sections).config
    assert config.plugin("tmpfs").enabled is False
    assert config.plugin("bind_mount").mounts == ()


def test_no_plugin_sections_means_plugins_key_is_unknown(tmp_path: Path) -> None:
    root = write(tmp_path / "r.yaml", "plugins:\n  tmpfs: {}\n")
    message = load_error(str(root), {})
    assert "unknown plugin (known: none)" in message


# -- command-line overrides --------------------------------------------------------------


def test_overrides_set_nested_and_plugin_keys(sections: dict[str, type]) -> None:
    overrides = [
        Override("sandbox.hostname", "box", "--config-opts sandbox.hostname=box"),
        Override("plugins.tmpfs.enabled", True, "--enable-plugin tmpfs"),
        Override("packages", ["a", "b"], "--config-opts packages=[a, b]"),
        Override("offline", True, "--offline"),
    ]
    loaded = load_config("trixie-amd64", overrides, sections)
    config = loaded.config
    assert config.sandbox.hostname == "box"
    assert config.sandbox.sys == "ro"  # the rest of the section is kept
    assert config.plugin("tmpfs").enabled is True
    assert config.packages == ("a", "b")
    assert config.offline is True
    origins = loaded.merged.origins
    assert origins[("sandbox", "hostname")] == "--config-opts sandbox.hostname=box"
    assert origins[("plugins", "tmpfs", "enabled")] == "--enable-plugin tmpfs"
    assert origins[("offline",)] == "--offline"


def test_later_override_wins(sections: dict[str, type]) -> None:
    overrides = [Override("suite", "sid", "first"), Override("suite", "forky", "second")]
    loaded = load_config("trixie-amd64", overrides, sections)
    assert loaded.config.suite == "forky"
    assert loaded.merged.origins[("suite",)] == "second"


def test_override_of_unknown_key_names_the_flag(sections: dict[str, type]) -> None:
    source = "--config-opts suit=sid"
    message = load_error("trixie-amd64", sections, [Override("suit", "sid", source)])
    assert source in message
    assert "'suit'" in message
    assert "did you mean 'suite'" in message


def test_override_of_wrong_type_names_the_flag(sections: dict[str, type]) -> None:
    source = "--config-opts build_uid=many"
    message = load_error("trixie-amd64", sections, [Override("build_uid", "many", source)])
    assert source in message
    assert "'build_uid'" in message
    assert "an integer" in message


def test_override_of_unknown_plugin_names_the_flag(sections: dict[str, type]) -> None:
    source = "--enable-plugin nosuch"
    message = load_error("trixie-amd64", sections, [Override("plugins.nosuch.enabled", True, source)])
    assert source in message
    assert "unknown plugin" in message


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("false", False),
        ("3", 3),
        ("2.5", 2.5),
        ("[a, b]", ["a", "b"]),
        ("/var/tmp/x", "/var/tmp/x"),
        ("", ""),
        ("null", None),
        ("[unclosed", "[unclosed"),
    ],
)
def test_parse_option_value_reads_like_yaml(text: str, value: object) -> None:
    assert parse_option_value(text) == value


def test_set_dotted_creates_sections_and_refuses_bad_keys() -> None:
    data: dict[str, object] = {}
    assert set_dotted(data, "a.b.c", 1) == ("a", "b", "c")
    assert data == {"a": {"b": {"c": 1}}}
    with pytest.raises(ConfigError, match="empty component"):
        set_dotted(data, "a..c", 1)
    with pytest.raises(ConfigError, match="not a section"):
        set_dotted(data, "a.b.c.d", 1)


def test_override_through_scalar_is_an_error(sections: dict[str, type]) -> None:
    overrides = [Override("suite", "sid", "x"), Override("suite.deep", "y", "y")]
    with pytest.raises(ConfigError, match="not a section"):
        load_config("trixie-amd64", overrides, sections)


# -- name, digest, describe -----------------------------------------------------------------


def test_name_defaults_to_file_stem(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "my-root_1.yaml", "suite: sid\n")
    loaded = load_config(str(root), [], sections)
    assert loaded.config.name == "my-root_1"
    assert loaded.merged.origins[("name",)] == f"{root.resolve()} (file name)"


def test_explicit_name_wins_over_stem(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "file.yaml", "name: chosen\n")
    assert load_config(str(root), [], sections).config.name == "chosen"


def test_invalid_root_name_is_an_error(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "file.yaml", "suite: sid\nname: 'has space/slash'\n")
    message = load_error(str(root), sections)
    assert f"{root.resolve()}:2" in message
    assert "not a valid root name" in message


def test_digest_is_stable_and_follows_content(sections: dict[str, type]) -> None:
    first = load_config("trixie-amd64", [], sections).digest
    again = load_config("trixie-amd64", [], sections).digest
    changed = load_config("trixie-amd64", [Override("suite", "sid", "x")], sections).digest
    assert first == again
    assert first != changed
    assert len(first) == 64


def test_describe_shows_values_and_origins(tmp_path: Path, sections: dict[str, type]) -> None:
    root = write(tmp_path / "r.yaml", "suite: bookworm\nsandbox:\n  hostname: h\n")
    loaded = load_config(
        str(root), [Override("variant", "minbase", "--config-opts variant=minbase")], sections
    )
    text = describe(loaded)
    lines = text.splitlines()
    assert lines[0] == f"# config file: {root.resolve()}"
    assert lines[1] == f"# digest: {loaded.digest}"
    assert f'suite: "bookworm"    # {root.resolve()}:1' in lines
    assert 'variant: "minbase"    # --config-opts variant=minbase' in lines
    assert f'basedir: "/var/lib/deb-mock"    # {BUILTIN}' in lines
    assert f"name: \"r\"    # {root.resolve()} (file name)" in lines
    assert "sandbox:" in lines
    assert f'  hostname: "h"    # {root.resolve()}:3' in lines
    assert "plugins:" in lines
    assert "  tmpfs:" in lines
    assert not any(line.startswith("templates") for line in lines)
