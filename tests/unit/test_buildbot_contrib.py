"""contrib/buildbot: deb-mock's exit codes as Buildbot's results, and the factory's steps (Buildbot's own classes).

tests/integration/test_farm.py runs a master and two workers, with a registry and apt-cacher-ng.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "contrib" / "buildbot"))

from buildbot.process.results import CANCELLED, EXCEPTION, FAILURE, RETRY, SUCCESS
from debmock_buildbot import DebMock, deb_mock_factory, init_lock, result_for


@pytest.mark.parametrize("code, result", [(0, SUCCESS), (10, FAILURE), (12, FAILURE), (30, FAILURE), (40, FAILURE),
                                          (60, RETRY), (90, RETRY), (7, CANCELLED), (1, EXCEPTION), (20, EXCEPTION),
                                          (80, EXCEPTION), (3, EXCEPTION), (255, EXCEPTION)])
def test_exit_codes_become_buildbot_results(code: int, result: int) -> None:
    assert result_for(code) == result


def test_the_factory_inits_under_a_lock_per_config_then_builds_and_uploads() -> None:
    factory = deb_mock_factory("trixie-amd64", "hello/sid")
    names = [step.kwargs.get("name") for step in factory.steps]
    assert names == ["init", "clean results", "rebuild", "upload results"]
    init, rebuild = factory.steps[0], factory.steps[2]
    assert init.step_class is DebMock and rebuild.step_class is DebMock
    assert init.args[1] == ["--init"] and rebuild.args[1][-2:] == ["--rebuild", "hello/sid"]
    assert init_lock("trixie-amd64") is init_lock("trixie-amd64") is not init_lock("sid-amd64")
