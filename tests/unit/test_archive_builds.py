"""binNMU entries and extra repositories: what they write, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from deb_mock import build_commands
from deb_mock.build_commands import BuildOptions
from deb_mock.build_sources import BuildSources
from deb_mock.errors import UsageError
from deb_mock.source import SourcePackage


def _source(version: str = "2.10-3") -> SourcePackage:
    return SourcePackage(dsc=Path("/x/hello.dsc"), name="hello", version=version, files=())


def test_binnmu_entry_is_sbuilds() -> None:
    options = BuildOptions(binnmu=1, binnmu_message="Rebuild for libfoo2", binnmu_timestamp="1764000000",
                           maintainer="Deb Mock <dm@example.invalid>")
    entry = build_commands.binary_only_entry(_source(), options, "amd64", "bookworm", now=0)
    assert entry == ("hello (2.10-3+b1) bookworm; urgency=low, binary-only=yes\n\n"
                     "  * Binary-only non-maintainer upload for amd64; no source changes.\n"
                     "  * Rebuild for libfoo2\n\n"
                     " -- Deb Mock <dm@example.invalid>  Mon, 24 Nov 2025 16:00:00 +0000\n\n")


def test_version_suffix_comes_before_the_binnmu_number() -> None:
    options = BuildOptions(binnmu=2, binnmu_message="x", append_to_version="~bpo12+1", uploader="U <u@x.invalid>")
    assert build_commands.binary_version("1:2.10-3", options) == "1:2.10-3~bpo12+1+b2"
    entry = build_commands.binary_only_entry(_source("1:2.10-3"), options, "arm64", "trixie", now=0)
    assert "  * Append ~bpo12+1 to version number; no source changes\n" in entry
    assert entry.endswith("\n -- U <u@x.invalid>  Thu, 01 Jan 1970 00:00:00 +0000\n\n")


def test_a_date_string_timestamp_is_kept_as_given() -> None:
    options = BuildOptions(append_to_version="+dm1", binnmu_timestamp="Tue, 01 Dec 2026 10:00:00 +0100")
    assert build_commands.binnmu_date(options, now=0) == "Tue, 01 Dec 2026 10:00:00 +0100"


def test_dpkg_buildpackage_gets_maintainer_uploader_and_more_options() -> None:
    options = BuildOptions(maintainer="M <m@x.invalid>", uploader="E <e@x.invalid>", debbuildopts=("--no-sign",),
                           source=True, dpkg_source_opts=("--compression=xz",))
    argv = build_commands.dpkg_buildpackage_command(options)
    assert argv[-4:] == ["-mM <m@x.invalid>", "-eE <e@x.invalid>", "--source-option=--compression=xz", "--no-sign"]


def test_extra_repositories_are_sorted_by_format_and_checked(tmp_path: Path) -> None:
    key = tmp_path / "repo.asc"
    key.write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nx\n")
    sources = BuildSources.parse(["deb [trusted=yes] http://127.0.0.1:8000/ ./",
                                  "Types: deb\nURIs: http://127.0.0.1:8001/\nSuites: ./"], [key], "--extra-repository")
    assert sources.one_line == ("deb [trusted=yes] http://127.0.0.1:8000/ ./",)
    assert len(sources.deb822) == 1 and sources.key_names() == ["deb-mock-build-0.asc"]
    assert [c[-5] for c in sources.update_commands()] == ["Dir::Etc::SourceList=/etc/apt/sources.list.d/"
                                                          "deb-mock-build.list", "Dir::Etc::SourceList=/etc/apt/"
                                                          "sources.list.d/deb-mock-build.sources"]
    assert all("--error-on=any" in c for c in sources.update_commands())
    assert "127.0.0.1" not in " ".join(sources.install_command())  # sources may hold credentials: never argv
    assert sources.environment()["DEB_MOCK_ONE_LINE"] == "deb [trusted=yes] http://127.0.0.1:8000/ ./"
    other = BuildSources.parse(["deb http://127.0.0.1:8000/ ./"], [key], "--extra-repository")
    assert sources.declaration() != other.declaration()
    with pytest.raises(UsageError, match="not an apt source line"):
        BuildSources.parse(["http://127.0.0.1/ ./"], [], "--extra-repository")
    with pytest.raises(UsageError, match="not a file"):
        BuildSources.parse([], [tmp_path / "missing.asc"], "--extra-repository")


def test_first_alternatives_as_buildds_take_them() -> None:
    text = "debhelper-compat (= 13), no-such | make, a [amd64] | b, c <!nocheck> | d, e:native (>= 1) | f"
    assert build_commands.first_alternatives(text) == (
        "debhelper-compat (= 13), no-such, a [amd64] | b, c <!nocheck> | d, e:native (>= 1)")


def test_satisfy_command_takes_the_fields_of_the_build() -> None:
    source = SourcePackage(dsc=Path("/x/p.dsc"), name="p", version="1", files=(), build_relations=(
        ("Build-Depends", "x | y"), ("Build-Depends-Indep", "doc-tool"), ("Build-Depends-Arch", "libz-dev"),
        ("Build-Conflicts", "bad")))
    argv = build_commands.satisfy_build_deps_command(source, BuildOptions(arch="any", nocheck=True))
    assert argv[argv.index("satisfy"):] == ["satisfy", "-P", "nocheck", "--", "build-essential:native, x, libz-dev",
                                            "Conflicts: bad"]
    argv = build_commands.satisfy_build_deps_command(source, BuildOptions(resolve_alternatives=True))
    assert argv[-2:] == ["build-essential:native, x | y, libz-dev, doc-tool", "Conflicts: bad"]


def test_a_cross_build_gets_sbuilds_core_dependencies_and_profiles() -> None:
    options = build_commands.cross_options(BuildOptions(host_arch="arm64", profiles=("pkg.foo.bar",)))
    assert options.arch == "any" and options.nocheck and options.all_profiles == ("pkg.foo.bar", "cross", "nocheck")
    source = SourcePackage(dsc=Path("/x/p.dsc"), name="p", version="1", files=(),
                           build_relations=(("Build-Depends", "libz-dev"),))
    argv = build_commands.satisfy_build_deps_command(source, options)
    assert "APT::Get::Host-Architecture=arm64" in argv
    assert argv[-1] == ("build-essential:native, crossbuild-essential-arm64:native, libc-dev:arm64, "
                        "libstdc++-dev:arm64, libz-dev")
    assert "--host-arch=arm64" in build_commands.dpkg_buildpackage_command(options)
