"""The remote cache's URL, tags and credentials, and a registry that is down or silent (real sockets).

Pushing and pulling against a real registry (Debian's docker-registry) is
tests/integration/test_remote_cache.py.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from deb_mock.errors import ConfigError
from deb_mock.remote_cache import Location, Registry, RemoteCacheUnavailable, _basic_auth, tag_for


def test_urls_name_a_repository_in_a_registry() -> None:
    assert Location.parse("oci://127.0.0.1:5000/deb-mock/cache") == Location("127.0.0.1", 5000, "deb-mock/cache")
    local = Location.parse("oci://localhost/cache")
    assert (local.port, local.secure) == (80, False)
    remote = Location.parse("oci://registry.example/farm/roots")
    assert (remote.port, remote.secure) == (443, True)


@pytest.mark.parametrize("url", ["http://127.0.0.1:5000/x", "oci://127.0.0.1:5000", "oci://127.0.0.1:99999/x",
                                 "oci://host/Upper", "oci:///x", "127.0.0.1:5000/x", "oci://h/x/../y"])
def test_a_malformed_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="is not oci://HOST"):
        Location.parse(url)


def test_tags_are_valid_oci_tags() -> None:
    assert tag_for("root", "ab" * 32 + "-zstd") == "root-" + "ab" * 32 + "-zstd"
    assert tag_for("root", "a/b:c") == "root-a_b_c"
    assert len(tag_for("root", "x" * 200)) == 128


def test_credentials_come_from_a_file(tmp_path: Path) -> None:
    good = tmp_path / "creds"
    good.write_text("builder:s3cret\n")
    assert _basic_auth(good) == "Basic YnVpbGRlcjpzM2NyZXQ="
    bad = tmp_path / "bad"
    bad.write_text("no colon\n")
    with pytest.raises(ConfigError, match="user:password"):
        _basic_auth(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        _basic_auth(tmp_path / "missing")


def test_a_registry_that_is_down_is_unavailable(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    registry = Registry(Location("127.0.0.1", port, "cache"))
    with pytest.raises(RemoteCacheUnavailable, match="refused"):
        registry.fetch("root-x", tmp_path / "out")
    assert not list(tmp_path.iterdir())


def test_a_registry_that_does_not_answer_is_unavailable_after_the_timeout(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    registry = Registry(Location("127.0.0.1", listener.getsockname()[1], "cache"), timeout=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(RemoteCacheUnavailable, match="timed out"):
            registry.fetch("root-x", tmp_path / "out")
        assert time.monotonic() - started < 5
    finally:
        for connection in accepted:
            connection.close()
        listener.close()


def test_a_killed_pull_leaves_nothing_the_next_one_keeps(tmp_path: Path) -> None:
    from deb_mock.build_deps_remote import _remove_leftovers

    dead = 4194304 + 1  # above pid_max's ceiling: no such process
    key = "ab" * 32
    (tmp_path / f".{key}.pull-{dead}.tar.zst").write_bytes(b"partial")
    (tmp_path / f".{key}.unpack-{dead}").mkdir()
    (tmp_path / f".{key}.unpack-{dead}" / "usr").mkdir()
    (tmp_path / f".{key}.push-{dead}.tar.zst").write_bytes(b"partial")
    (tmp_path / f".{key}.pull-{dead}.tar.zst.tmp-{dead}").write_bytes(b"a download cut short")
    alive = tmp_path / f".{key}.pull-{os.getpid()}.tar.zst"
    alive.write_bytes(b"someone is pulling")
    (tmp_path / key).mkdir()  # a layer
    _remove_leftovers(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, key])
