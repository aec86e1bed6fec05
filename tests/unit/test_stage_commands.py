"""Stage commands and hook directories: sbuild's escapes, pbuilder's script names, bad input (exit 5 or 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deb_mock import stage_commands
from deb_mock.cli import build_parser, main, parse_args, selected_mode
from deb_mock.errors import UsageError

VALUES = {"SBUILD_HOST_ARCH": "amd64", "SBUILD_PKGBUILD_DIR": "/build/p/hello-1", "SBUILD_BUILD_DIR": "/build/p",
          "SBUILD_DSC": "/src/hello_1.dsc"}


pytestmark = pytest.mark.usefixtures("isolated_cli")


def test_short_and_long_escapes_are_replaced() -> None:
    text = stage_commands.expand("echo %a %SBUILD_HOST_ARCH %p %b %d 100%%", VALUES)
    assert text == "echo amd64 amd64 /build/p/hello-1 /build/p /src/hello_1.dsc 100%"


def test_escapes_without_a_value_stay_as_sbuild_leaves_them() -> None:
    assert stage_commands.expand("ls %c %SBUILD_CHANGES", VALUES) == "ls %c %SBUILD_CHANGES"


@pytest.mark.parametrize("command", ["echo %x", "echo %SBUILD_NOPE", "echo 50%"])
def test_unknown_escapes_are_usage_errors(command: str) -> None:
    with pytest.raises(UsageError, match="unknown escape"):
        stage_commands.check_command(command)


def test_shell_escape_is_recognised() -> None:
    assert stage_commands.uses_shell("%s") and stage_commands.uses_shell("x %SBUILD_SHELL")
    assert not stage_commands.uses_shell("echo %%s")


def test_hook_scripts_follow_pbuilders_names(tmp_path: Path) -> None:
    for name in ("A10first", "A20second", "A3x", "A30backup~", "A40old.bak", "B10other", "A50noexec"):
        path = tmp_path / name
        path.write_text("#!/bin/sh\n")
        path.chmod(0o644 if name == "A50noexec" else 0o755)
    (tmp_path / "A60link").symlink_to(tmp_path / "A10first")
    assert [p.name for p in stage_commands.hook_scripts(tmp_path, "A")] == ["A10first", "A20second"]
    assert stage_commands.hook_scripts(None, "A") == []


def test_stage_options_keep_their_order_across_stages() -> None:
    args = parse_args(build_parser(), ["--rebuild", "x.dsc", "--starting-build-commands", "one",
                                       "--chroot-setup-commands", "two", "--starting-build-commands", "three"])
    assert args.stage_commands == [("starting-build-commands", "one"), ("chroot-setup-commands", "two"),
                                   ("starting-build-commands", "three")]
    assert stage_commands.ordered(args.stage_commands) == {"starting-build-commands": ["one", "three"],
                                                           "chroot-setup-commands": ["two"]}


def test_every_stage_has_a_known_place() -> None:
    assert stage_commands.STAGE_NAMES[0] == "pre-build-commands"
    assert {s.where for s in stage_commands.STAGES} == {"host", "root"}
    letters = "".join(s.letters for s in stage_commands.STAGES)
    assert sorted(letters) == sorted("ABCDHI")


def test_bad_escape_on_the_command_line_is_exit_5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    basedir = tmp_path / "basedir"
    basedir.mkdir()
    code = main(["--rebuild", "x.dsc", "--config-opts", f"basedir={basedir}", "--finished-build-commands", "ls %q"])
    err = capsys.readouterr().err
    assert code == 5 and "unknown escape %q" in err and "Traceback" not in err
    assert list(basedir.iterdir()) == []


def test_missing_hookdir_is_exit_5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--rebuild", "x.dsc", "--config-opts", f"basedir={tmp_path}", "--hookdir", str(tmp_path / "no")])
    assert code == 5 and "not a directory" in capsys.readouterr().err


def test_failed_build_only_with_a_session(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--install", "hello", "--failed-build", "--config-opts", f"basedir={tmp_path}"])
    assert code == 5 and "--failed-build goes with --chroot or --shell" in capsys.readouterr().err


def test_shell_without_a_kept_build_is_exit_5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--chroot", "true", "--failed-build", "--config-opts", f"basedir={tmp_path}"])
    err = capsys.readouterr().err
    assert code == 5 and "no failed build kept" in err, err


def test_bad_escape_in_the_config_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "hooked.yaml"
    config.write_text(f"basedir: {tmp_path}\nhooks:\n  starting_build_commands: ['echo %z']\n")
    dsc = tmp_path / "x_1.dsc"
    dsc.write_text("")
    code = main(["-r", str(config), "--rebuild", str(dsc)])
    err = capsys.readouterr().err
    assert "hooks.starting_build_commands" in err and "%z" in err and code == 3, err


def test_installdeps_is_a_mode_of_its_own() -> None:
    args = parse_args(build_parser(), ["--installdeps", "x.dsc"])
    assert selected_mode(args) == "installdeps"
