"""Fixtures shared by the unit tests that call the command line's main()."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from deb_mock.plugin_manager import DISABLE_ENV


@pytest.fixture(autouse=True)
def own_cache_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsed configs are cached per user: unit tests keep theirs out of the caller's home."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))


@pytest.fixture
def isolated_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No /etc/deb-mock or user config; main()'s SIGTERM handler is put back afterwards."""
    sysconf = tmp_path / "sysconf"
    sysconf.mkdir()
    monkeypatch.setenv("DEB_MOCK_SYSCONFDIR", str(sysconf))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)
