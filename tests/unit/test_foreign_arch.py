"""Which roots need qemu-user: the native case is decided without running dpkg."""

from __future__ import annotations

import pytest
from pytest_mock import MockerFixture

from deb_mock import foreign_arch


def test_the_kernels_own_architecture_needs_no_dpkg_run(mocker: MockerFixture) -> None:
    mocker.patch.object(foreign_arch, "machine", return_value="x86_64")
    run = mocker.patch.object(foreign_arch.subprocess, "run", side_effect=AssertionError("dpkg was run"))
    assert foreign_arch.ensure_foreign_arch_support("amd64") is None
    run.assert_not_called()


def test_an_unknown_architecture_is_named_in_the_error(mocker: MockerFixture) -> None:
    mocker.patch.object(foreign_arch, "machine", return_value="x86_64")
    mocker.patch.object(foreign_arch, "host_architecture", return_value="amd64")
    with pytest.raises(foreign_arch.ArchError, match="'vax'"):
        foreign_arch.ensure_foreign_arch_support("vax")


@pytest.mark.parametrize(("machine", "expected"), [("x86_64", "amd64"), ("aarch64", "arm64"), ("riscv64", "riscv64")])
def test_without_dpkg_the_architecture_comes_from_uname(mocker: MockerFixture, machine: str, expected: str) -> None:
    mocker.patch.object(foreign_arch.shutil, "which", return_value=None)
    mocker.patch.object(foreign_arch, "machine", return_value=machine)
    assert foreign_arch.host_architecture() == expected
