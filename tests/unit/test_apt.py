"""deb_mock.apt: command builders, package-name checks, failure explanations."""

from __future__ import annotations

import pytest

from deb_mock import apt
from deb_mock.errors import ExitCode, UsageError

BASE = [
    "apt-get",
    "--yes",
    "-o",
    "Dpkg::Options::=--force-confdef",
    "-o",
    "Dpkg::Options::=--force-confold",
]


def test_update_command() -> None:
    assert apt.update_command() == [*BASE, "update"]


def test_install_command() -> None:
    assert apt.install_command(["hello", "make=4.3-4"]) == [
        *BASE,
        "install",
        "--no-install-recommends",
        "--",
        "hello",
        "make=4.3-4",
    ]


def test_remove_command() -> None:
    assert apt.remove_command(["hello"]) == [*BASE, "remove", "--autoremove", "--", "hello"]


def test_upgrade_command_everything() -> None:
    assert apt.upgrade_command() == [*BASE, "dist-upgrade"]


def test_upgrade_command_some_packages() -> None:
    assert apt.upgrade_command(["libc6", "hello"]) == [
        *BASE,
        "install",
        "--only-upgrade",
        "--no-install-recommends",
        "--",
        "libc6",
        "hello",
    ]


def test_installed_packages_command() -> None:
    assert apt.installed_packages_command() == [
        "dpkg-query",
        "--show",
        "--showformat=${binary:Package} ${Version} ${Architecture}\\n",
    ]


def test_builders_return_fresh_lists() -> None:
    first = apt.update_command()
    first.append("--mutated")
    assert apt.update_command() == [*BASE, "update"]


def test_apt_env_is_noninteractive() -> None:
    assert apt.APT_ENV["DEBIAN_FRONTEND"] == "noninteractive"
    assert apt.APT_ENV["APT_LISTCHANGES_FRONTEND"] == "none"


@pytest.mark.parametrize(
    "name",
    [
        "hello",
        "hello=2.10-3",
        "libc6:amd64",
        "hello/trixie",
        "g++",
        "libstdc++6:i386=14.2.0-19",
        "hello/trixie-backports",
        "python3.13",
        "hello=1:2.10~rc1+dfsg-3",
        "hello-",
        "hello+",
    ],
)
def test_check_package_names_accepts(name: str) -> None:
    apt.check_package_names([name])


@pytest.mark.parametrize(
    "name",
    ["-o", "--yes", "foo bar", "../x", "", "Hello", "hello;rm", "hello/../../x", "/tmp/x.deb"],
)
def test_check_package_names_refuses(name: str) -> None:
    with pytest.raises(UsageError) as info:
        apt.check_package_names(["hello", name])
    assert f"'{name}'" in str(info.value)
    assert info.value.exit_code == ExitCode.USAGE


def test_check_package_names_needs_one() -> None:
    with pytest.raises(UsageError, match="no package names"):
        apt.check_package_names([])


APT_FAILURE = [
    "Reading package lists...",
    "Building dependency tree...",
    "Reading state information...",
    "Some packages could not be installed. This may mean that you have",
    "requested an impossible situation or if you are using the unstable",
    "distribution that some required packages have not yet been created",
    "or been moved out of Incoming.",
    "The following information may help to resolve the situation:",
    "",
    "The following packages have unmet dependencies:",
    " foo : Depends: bar (>= 2.0) but it is not going to be installed",
    "       Depends: baz but it is not installable",
    "E: Unable to correct problems, you have held broken packages.",
    "E: Unable to correct problems, you have held broken packages.",
]


def test_explain_failure_keeps_errors_and_unmet_dependencies() -> None:
    assert apt.explain_failure(APT_FAILURE) == "\n".join(
        [
            "foo : Depends: bar (>= 2.0) but it is not going to be installed",
            "Depends: baz but it is not installable",
            "E: Unable to correct problems, you have held broken packages.",
        ]
    )


def test_explain_failure_keeps_failed_fetch_warnings() -> None:
    lines = [
        "Hit:1 http://mirror.example/debian trixie InRelease",
        "W: Failed to fetch http://x/dists/trixie/InRelease  Could not resolve 'x'",
        "E: Unable to locate package nosuch",
    ]
    explained = apt.explain_failure(lines)
    assert explained.splitlines() == lines[1:]


def test_explain_failure_falls_back_to_the_tail() -> None:
    lines = [f"line {i}" for i in range(10)]
    assert apt.explain_failure(lines) == "\n".join(lines[-5:])
