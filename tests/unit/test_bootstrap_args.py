"""deb_mock.bootstrap: the mmdebstrap command line and the preparation of a fresh base."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import pytest
from debian.deb822 import Deb822

from deb_mock.bootstrap import (
    APT_CONF_NAME,
    apt_options,
    configure_sources,
    deb822_with_sources,
    mmdebstrap_command,
    source_lines_for_deb_src,
    write_in_tree,
)
from deb_mock.config import Config
from deb_mock.errors import RootError

TARGET = Path("/var/lib/deb-mock/trixie-amd64/base.incoming-1")
COMMON = ["mmdebstrap", "--mode=root"]
SKIP = "--skip=cleanup/apt/lists"


def config(**changes: object) -> Config:
    return dataclasses.replace(Config(name="trixie-amd64"), **changes)  # type: ignore[arg-type]


def test_default_config() -> None:
    assert mmdebstrap_command(config(), TARGET) == [
        *COMMON,
        "--variant=buildd",
        "--architectures=amd64",
        "--components=main",
        SKIP,
        "trixie",
        str(TARGET),
    ]


def test_no_mirror_argument_without_mirror() -> None:
    argv = mmdebstrap_command(config(mirror=None), TARGET)
    assert argv[-1] == str(TARGET)
    assert argv[-2] == "trixie"
    assert not any("http" in arg for arg in argv)  # no mirror of ours: mmdebstrap's default serves


def test_empty_mirror_is_no_mirror() -> None:
    assert mmdebstrap_command(config(mirror=""), TARGET)[-1] == str(TARGET)


def test_suite_arch_variant_components_and_packages() -> None:
    cfg = config(
        suite="bookworm",
        architecture="arm64",
        variant="minbase",
        components=("main", "contrib", "non-free-firmware"),
        packages=("build-essential", "fakeroot"),
    )
    assert mmdebstrap_command(cfg, TARGET) == [
        *COMMON,
        "--variant=minbase",
        "--architectures=arm64",
        "--components=main,contrib,non-free-firmware",
        SKIP,
        "--include=build-essential,fakeroot",
        "bookworm",
        str(TARGET),
    ]


def test_keyrings() -> None:
    cfg = config(keyrings=("/usr/share/keyrings/a.gpg", "/etc/b.asc"))
    assert mmdebstrap_command(cfg, TARGET) == [
        *COMMON,
        "--variant=buildd",
        "--architectures=amd64",
        "--components=main",
        SKIP,
        "--keyring=/usr/share/keyrings/a.gpg",
        "--keyring=/etc/b.asc",
        "trixie",
        str(TARGET),
    ]


def test_apt_proxy() -> None:
    cfg = config(apt_proxy="http://127.0.0.1:3142")
    assert mmdebstrap_command(cfg, TARGET) == [
        *COMMON,
        "--variant=buildd",
        "--architectures=amd64",
        "--components=main",
        SKIP,
        '--aptopt=Acquire::http::Proxy "http://127.0.0.1:3142"',
        "trixie",
        str(TARGET),
    ]


def test_mirror_comes_last() -> None:
    cfg = config(mirror="http://mirror.example/debian")
    assert mmdebstrap_command(cfg, TARGET) == [
        *COMMON,
        "--variant=buildd",
        "--architectures=amd64",
        "--components=main",
        SKIP,
        "trixie",
        str(TARGET),
        "http://mirror.example/debian",
    ]


def test_extra_args_from_plugins_before_positionals() -> None:
    cfg = config(packages=("ccache",), mirror="http://m/debian", apt_proxy="http://p:1")
    extra = ["--aptopt=Acquire::Retries \"3\"", "--setup-hook=echo hi"]
    assert mmdebstrap_command(cfg, TARGET, extra) == [
        *COMMON,
        "--variant=buildd",
        "--architectures=amd64",
        "--components=main",
        SKIP,
        "--include=ccache",
        '--aptopt=Acquire::http::Proxy "http://p:1"',
        *extra,
        "trixie",
        str(TARGET),
        "http://m/debian",
    ]


def test_apt_options() -> None:
    assert apt_options(config()) == [
        'APT::Install-Recommends "false"',
        'Acquire::Languages "none"',
        'Dpkg::Use-Pty "false"',
    ]
    assert apt_options(config(apt_proxy="http://p:3142")) == apt_options(config())  # the base keeps no proxy


# -- sources ------------------------------------------------------------------------------


def test_source_lines_for_deb_src() -> None:
    text = (
        "# comment\n"
        "deb http://mirror.example/debian trixie main\n"
        "  deb [arch=amd64] http://security.mirror.example/debian-security trixie-security main\n"
        "deb-src http://mirror.example/debian trixie main\n"
        "\n"
        "debx not-a-line\n"
    )
    assert source_lines_for_deb_src(text) == [
        "deb-src http://mirror.example/debian trixie main",
        "deb-src [arch=amd64] http://security.mirror.example/debian-security trixie-security main",
    ]


def test_source_lines_for_empty_list() -> None:
    assert source_lines_for_deb_src("") == []


def test_deb822_with_sources() -> None:
    text = (
        "Types: deb\n"
        "URIs: http://mirror.example/debian\n"
        "Suites: trixie trixie-updates\n"
        "Components: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        "\n"
        "Types: deb deb-src\n"
        "URIs: http://security.mirror.example/debian-security\n"
        "Suites: trixie-security\n"
        "Components: main\n"
        "\n"
        "Types: deb-src\n"
        "URIs: http://src.example/debian\n"
        "Suites: trixie\n"
        "Components: main\n"
    )
    result = deb822_with_sources(text)
    stanzas = list(Deb822.iter_paragraphs(result.splitlines(keepends=True)))
    assert [s["Types"] for s in stanzas] == ["deb deb-src", "deb deb-src", "deb-src"]
    assert stanzas[0]["Suites"] == "trixie trixie-updates"
    assert stanzas[0]["Signed-By"] == "/usr/share/keyrings/debian-archive-keyring.gpg"
    assert [s["URIs"] for s in stanzas] == [
        "http://mirror.example/debian",
        "http://security.mirror.example/debian-security",
        "http://src.example/debian",
    ]


# -- writing into a fresh tree ----------------------------------------------------------


def test_write_in_tree_creates_parents(tmp_path: Path) -> None:
    write_in_tree(tmp_path, "etc/apt/apt.conf.d/90x", "hello\n")
    assert (tmp_path / "etc/apt/apt.conf.d/90x").read_text() == "hello\n"


def test_write_in_tree_refuses_symlinked_directory(tmp_path: Path) -> None:
    tree, outside = tmp_path / "tree", tmp_path / "host"
    (tree / "etc").mkdir(parents=True)
    outside.mkdir()
    (tree / "etc" / "apt").symlink_to(outside)
    with pytest.raises(RootError, match="symlink"):
        write_in_tree(tree, "etc/apt/sources.list.d/x.list", "deb x y z\n")
    assert list(outside.iterdir()) == []


def test_write_in_tree_refuses_symlinked_file(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tree / "etc" / "hostname").symlink_to(victim)
    with pytest.raises(RootError, match="symlink"):
        write_in_tree(tree, "etc/hostname", "evil\n")
    assert victim.read_text() == "precious\n"


def _fake_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    (tree / "etc" / "apt" / "sources.list.d").mkdir(parents=True)
    (tree / "etc" / "apt" / "sources.list").write_text(
        "deb http://mirror.example/debian trixie main\n", encoding="utf-8"
    )
    return tree


def test_configure_sources_defaults_writes_only_apt_conf(tmp_path: Path) -> None:
    tree = _fake_tree(tmp_path)
    configure_sources(tree, config())
    assert list((tree / "etc/apt/sources.list.d").iterdir()) == []
    assert (tree / "etc/apt/apt.conf.d" / APT_CONF_NAME).read_text() == (
        'APT::Install-Recommends "false";\n'
        'Acquire::Languages "none";\n'
        'Dpkg::Use-Pty "false";\n'
    )


def test_configure_sources_deb_src_and_extra(tmp_path: Path) -> None:
    tree = _fake_tree(tmp_path)
    (tree / "etc/apt/sources.list.d/debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: trixie\nComponents: main\n",
        encoding="utf-8",
    )
    cfg = config(
        deb_src=True,
        extra_sources=("deb http://extra.example/debian trixie main", "deb http://two/ sid main"),
        apt_proxy="http://proxy:3142",
    )
    configure_sources(tree, cfg)
    lists = tree / "etc/apt/sources.list.d"
    assert (lists / "deb-mock-src.list").read_text() == (
        "deb-src http://mirror.example/debian trixie main\n"
    )
    assert (lists / "deb-mock-extra.list").read_text() == (
        "deb http://extra.example/debian trixie main\ndeb http://two/ sid main\n"
    )
    stanza = Deb822((lists / "debian.sources").read_text())
    assert stanza["Types"] == "deb deb-src"
    conf = (tree / "etc/apt/apt.conf.d" / APT_CONF_NAME).read_text()
    assert "Proxy" not in conf
    assert (tree / "etc/apt/apt.conf.d" / APT_CONF_NAME).stat().st_mode & 0o777 == 0o644
    assert (lists / "deb-mock-extra.list").stat().st_mode & 0o777 == 0o644
    # the one-line list itself is left alone
    assert (tree / "etc/apt/sources.list").read_text() == (
        "deb http://mirror.example/debian trixie main\n"
    )


def test_configure_sources_without_sources_list(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "etc" / "apt").mkdir(parents=True)
    configure_sources(tree, config(deb_src=True))
    assert not (tree / "etc/apt/sources.list.d/deb-mock-src.list").exists()
    assert (tree / "etc/apt/apt.conf.d" / APT_CONF_NAME).is_file()


def test_configure_sources_refuses_symlinked_apt_conf_dir(tmp_path: Path) -> None:
    tree = _fake_tree(tmp_path)
    host = tmp_path / "host-apt.conf.d"
    host.mkdir()
    (tree / "etc/apt/apt.conf.d").symlink_to(host)
    with pytest.raises(RootError):
        configure_sources(tree, config())
    assert list(host.iterdir()) == []


def test_configure_sources_never_writes_through_symlinked_sources_dir(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "etc" / "apt").mkdir(parents=True)
    host = tmp_path / "host-sources.list.d"
    host.mkdir()
    original = "Types: deb\nURIs: http://host.example/debian\nSuites: trixie\nComponents: main\n"
    (host / "host.sources").write_text(original, encoding="utf-8")
    (tree / "etc/apt/sources.list.d").symlink_to(host)
    with contextlib.suppress(RootError):  # refusing is fine; writing to the host is not
        configure_sources(tree, config(deb_src=True))
    assert (host / "host.sources").read_text(encoding="utf-8") == original


def test_credentials_are_root_only_and_never_through_a_link(tmp_path: Path) -> None:
    tree = _fake_tree(tmp_path)
    conf_dir = tree / "etc/apt/apt.conf.d"
    conf_dir.mkdir(exist_ok=True)
    (conf_dir / "99mmdebstrap").write_text('Acquire::Retries "3";\nAcquire::http::Proxy "http://u:secret@proxy:3142";\n')
    cfg = config(apt_proxy="http://u:secret@proxy:3142", extra_sources=("deb https://u:pw@repo.example/ sid main",))
    configure_sources(tree, cfg)
    # the proxy goes: the base keeps no credentials (and is shared with builders behind other proxies)
    assert (conf_dir / "99mmdebstrap").read_text() == 'Acquire::Retries "3";\n'
    assert "secret" not in (conf_dir / APT_CONF_NAME).read_text()
    assert (tree / "etc/apt/sources.list.d/deb-mock-extra.list").stat().st_mode & 0o777 == 0o600
    host = tmp_path / "host-file"
    host.write_text('Acquire::http::Proxy "x";\n')
    (conf_dir / "99mmdebstrap").unlink()
    (conf_dir / "99mmdebstrap").symlink_to(host)
    with pytest.raises(RootError):
        configure_sources(tree, cfg)
    assert host.read_text() == 'Acquire::http::Proxy "x";\n'
