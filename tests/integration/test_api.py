"""The Python API does what the CLI does, and returns the same result object."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.integration.conftest import DebMock

pytestmark = [pytest.mark.root, pytest.mark.network, pytest.mark.slow]


def test_open_root_init_install_chroot(dm: DebMock, trixie: dict[str, object], monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    for key, value in dm.env.items():
        monkeypatch.setenv(key, value)
    from deb_mock.api import open_root
    from deb_mock.errors import AptError

    log = tmp_path / "out.txt"
    with open_root("trixie-amd64", uniqueext="api", resultdir=tmp_path / "result") as root:
        assert root.init() is True  # a new root: bootstrapped
        root.install(["hello"])
        with log.open("w") as echo:
            assert root.chroot(["hello"], echo=echo) == 0
        with pytest.raises(AptError) as failure:
            root.install(["no-such-package-xyz"])
        assert failure.value.exit_code == 30
    assert log.read_text() == "Hello, world!\n"
    written = json.loads((tmp_path / "result" / "result.json").read_text())
    assert written == json.loads(root.result.to_json())
    assert written["root"] == "trixie-amd64-api" and written["mode"] == "api"
    assert os.path.isdir(root.paths.base)
    dm.ok("-r", "trixie-amd64", "--uniqueext", "api", "--scrub=chroot")  # all would drop the shared caches
