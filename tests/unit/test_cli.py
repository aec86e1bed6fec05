"""deb_mock.cli.main: exit codes, info modes and usage errors (never a real root)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deb_mock import __version__, apt
from deb_mock.cli import build_parser, main, overrides_from, parse_args, selected_mode
from deb_mock.errors import ExitCode, UsageError

BUNDLED_ROOTS = ("bookworm-amd64", "sid-amd64", "trixie-amd64", "trixie-arm64")


pytestmark = pytest.mark.usefixtures("isolated_cli")


@pytest.fixture
def basedir(tmp_path: Path) -> Path:
    path = tmp_path / "basedir"
    path.mkdir()
    return path


# -- usage errors: exit 5 -------------------------------------------------------------------


def test_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--no-such-option"]) == ExitCode.USAGE == 5
    err = capsys.readouterr().err
    assert "--no-such-option" in err
    assert "Traceback" not in err


def test_no_mode(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 5
    assert "nothing to do" in capsys.readouterr().err


def test_arguments_without_mode(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-r", "trixie-amd64", "hello"]) == 5
    assert "'hello': no mode given" in capsys.readouterr().err


def test_chroot_without_command(basedir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--chroot", "--config-opts", f"basedir={basedir}"]) == 5
    assert "--chroot needs a command" in capsys.readouterr().err
    assert list(basedir.iterdir()) == []  # refused before the root was locked or touched


def test_install_without_packages(basedir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--install", "--config-opts", f"basedir={basedir}"]) == 5
    assert "needs package names" in capsys.readouterr().err
    assert list(basedir.iterdir()) == []


@pytest.mark.parametrize("item", ["novalue", "=x"])
def test_config_opts_without_equals(item: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--debug-config", "--config-opts", item]) == 5
    assert f"--config-opts '{item}': expected KEY=VALUE" in capsys.readouterr().err


def test_plugin_option_malformed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--debug-config", "--plugin-option", "tmpfs=enabled"]) == 5
    assert "expected NAME:KEY=VALUE" in capsys.readouterr().err


def test_unknown_scrub_kind(basedir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--scrub", "bogus", "-r", "trixie-amd64", "--config-opts", f"basedir={basedir}"])
    assert code == 5
    err = capsys.readouterr().err
    assert "unknown kind 'bogus'" in err
    assert "chroot" in err and "results" in err and "all" in err


def test_unknown_scrub_kind_is_refused_before_the_root_is_touched(
    basedir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # _root_action: "arguments checked before the lock is taken", as for --chroot
    code = main(["--scrub", "chroot,bogus", "-r", "trixie-amd64",
                 "--config-opts", f"basedir={basedir}"])
    assert code == 5
    assert "unknown kind 'bogus'" in capsys.readouterr().err
    assert sorted(p.name for p in basedir.iterdir()) == []


# -- info modes -------------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"deb-mock {__version__}"


def test_json_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "--version"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == {"status": "success", "exit_code": 0, "version": __version__}


def test_list_chroots(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-chroots"]) == 0
    out = capsys.readouterr().out
    listed = [line.split()[0] for line in out.splitlines() if line.strip()]
    for name in BUNDLED_ROOTS:
        assert name in listed
    assert "default" not in listed and "site-defaults" not in listed
    assert 'Debian 13 "trixie" for amd64' in out


def test_json_list_chroots(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-chroots", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    names = [c["name"] for c in data["chroots"]]
    assert set(BUNDLED_ROOTS) <= set(names)
    assert all(Path(c["path"]).is_file() for c in data["chroots"])


def test_debug_config_prints_origins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--debug-config", "-r", "trixie-amd64"]) == 0
    out = capsys.readouterr().out
    assert "# config file:" in out and "trixie-amd64.yaml" in out
    assert any(
        line.startswith('suite: "trixie"') and "trixie-amd64.yaml:3" in line
        for line in out.splitlines()
    )
    assert any(
        line.startswith("basedir:") and "built-in default" in line for line in out.splitlines()
    )
    assert "templates/debian.yaml:" in out


def test_debug_config_shows_command_line_origin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--debug-config", "-r", "trixie-amd64", "--config-opts", "suite=sid",
                 "--offline"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert 'suite: "sid"    # --config-opts suite=sid' in lines
    assert "offline: true    # --offline" in lines


def test_json_debug_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "--debug-config", "-r", "sid-amd64",
                 "--enable-plugin", "tmpfs"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["config"]["suite"] == "sid"
    assert data["config"]["plugins"]["tmpfs"]["enabled"] is True
    assert data["origins"]["plugins.tmpfs.enabled"] == "--enable-plugin tmpfs"
    assert data["origins"]["suite"].endswith("sid-amd64.yaml:3")


def test_list_plugins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-plugins", "--json"]) == 0
    plugins = {p["name"]: p for p in json.loads(capsys.readouterr().out)["plugins"]}
    assert {"bind_mount", "tmpfs", "hw_info"} <= set(plugins)
    assert plugins["tmpfs"]["enabled"] is False
    assert plugins["hw_info"]["enabled"] is True
    assert "debmock_mounts" in plugins["bind_mount"]["hooks"]


def test_print_root_path(basedir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-p", "-r", "trixie-amd64", "--uniqueext", "x",
                 "--config-opts", f"basedir={basedir}"]) == 0
    assert capsys.readouterr().out.strip() == str(basedir / "trixie-amd64-x" / "mnt")


# -- configuration errors: exit 3 ---------------------------------------------------------


def test_bad_config_file_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("suite: trixie\nvariant: buildd\nsuit: sid\n", encoding="utf-8")
    assert main(["--debug-config", "-r", str(bad)]) == ExitCode.CONFIG == 3
    err = capsys.readouterr().err
    assert f"{bad.resolve()}:3" in err
    assert "'suit'" in err
    assert "Traceback" not in err


def test_bad_config_in_json_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("variant: 3\n", encoding="utf-8")
    assert main(["--json", "--debug-config", "-r", str(bad)]) == 3
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["status"] == "failure"
    assert data["exit_code"] == 3
    assert f"{bad.resolve()}:1" in data["error"]
    assert f"{bad.resolve()}:1" in captured.err


def test_unknown_root_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--debug-config", "-r", "trixie-amd46"]) == 3
    err = capsys.readouterr().err
    assert "did you mean 'trixie-amd64'" in err
    assert "bookworm-amd64" in err


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--debug-config", "-r", str(tmp_path / "nope.yaml")]) == 3
    assert "nope.yaml: configuration file not found" in capsys.readouterr().err


def test_unknown_plugin_on_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--debug-config", "--disable-plugin", "nosuch"]) == 3
    err = capsys.readouterr().err
    assert "unknown plugin" in err
    assert "--disable-plugin nosuch" in err


# -- the parser --------------------------------------------------------------------------


def test_overrides_from_flags() -> None:
    args = build_parser().parse_intermixed_args(
        ["--debug-config", "--config-opts", "sandbox.hostname=h", "--config-opts", "lock_timeout=5",
         "--plugin-option", "tmpfs:enabled=true", "--enable-plugin", "hw_info",
         "--disable-plugin", "bind_mount", "--offline"]
    )
    result = [(o.dotted, o.value, o.source) for o in overrides_from(args)]
    assert result == [
        ("sandbox.hostname", "h", "--config-opts sandbox.hostname=h"),
        ("lock_timeout", 5, "--config-opts lock_timeout=5"),
        ("plugins.tmpfs.enabled", True, "--plugin-option tmpfs:enabled=true"),
        ("plugins.hw_info.enabled", True, "--enable-plugin hw_info"),
        ("plugins.bind_mount.enabled", False, "--disable-plugin bind_mount"),
        ("offline", True, "--offline"),
    ]


def test_selected_mode() -> None:
    parser = build_parser()
    assert selected_mode(parser.parse_intermixed_args(["--chroot", "ls -l"])) == "chroot"
    assert selected_mode(parser.parse_intermixed_args(["--scrub", "all"])) == "scrub"
    assert selected_mode(parser.parse_intermixed_args(["-i", "hello"])) == "install"
    with pytest.raises(UsageError):
        selected_mode(parser.parse_intermixed_args([]))


def test_chroot_command_with_options_after_double_dash() -> None:
    # deb-mock --chroot -- ls -l: the command's own options follow '--'
    args = parse_args(build_parser(), ["-r", "sid-amd64", "--chroot", "--", "ls", "-l"])
    assert selected_mode(args) == "chroot"
    assert args.args == ["ls", "-l"]
    assert args.root == "sid-amd64"


def test_network_off_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    # README: "unless --offline or sandbox.network: false"
    assert main(["--json", "--debug-config", "--config-opts", "sandbox.network=off"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["config"]["sandbox"]["network"] is False


def test_two_modes_are_refused_by_the_parser() -> None:
    with pytest.raises(UsageError, match="not allowed with"):
        build_parser().parse_intermixed_args(["--version", "--list-chroots"])


@pytest.mark.parametrize(("flags", "upgrade", "resolver"), [
    ((), None, None),
    (("--no-apt-upgrade",), False, None),
    (("--no-apt-distupgrade", "--build-dep-resolver", "aptitude"), False, "aptitude"),
    (("--apt-distupgrade", "--build-dep-resolver=apt"), True, "apt"),
])
def test_base_upgrade_and_resolver_options(flags: tuple[str, ...], upgrade: bool | None,
                                           resolver: str | None) -> None:
    from deb_mock.cli import build_options_from
    from deb_mock.plugin_manager import make_plugin_manager

    args = parse_args(build_parser(make_plugin_manager()), ["--rebuild", "x.dsc", *flags])
    options = build_options_from(args)
    assert (options.apt_distupgrade, options.build_dep_resolver) == (upgrade, resolver)


def test_an_unknown_resolver_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-r", "trixie-amd64", "--rebuild", "x.dsc", "--build-dep-resolver", "aspcud"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "aspcud" in err and "Traceback" not in err


def test_pm_cmd_hands_apt_get_its_own_options_after_double_dash() -> None:
    # deb-mock --pm-cmd -- -s install hello: apt-get's options follow '--', as --chroot's do
    args = parse_args(build_parser(), ["-r", "trixie-amd64", "--pm-cmd", "--", "-s", "install", "hello"])
    assert selected_mode(args) == "pm_cmd" and args.args == ["-s", "install", "hello"]
    argv = apt.pm_command(args.args)
    assert argv[:2] == ["apt-get", "--yes"] and argv[-3:] == ["-s", "install", "hello"]


def test_pm_cmd_without_arguments(basedir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--pm-cmd", "--config-opts", f"basedir={basedir}"]) == 5
    assert "--pm-cmd needs apt-get's arguments" in capsys.readouterr().err
    assert list(basedir.iterdir()) == []
