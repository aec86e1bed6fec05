"""Parsed configuration files cached as JSON: used only while the file is unchanged and the cache is the user's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_mock

from deb_mock.config import parsed_cache, yamlsource


def _config(tmp_path: Path, text: str = "suite: trixie\nsandbox:\n  network: false\n") -> Path:
    path = tmp_path / "root.yaml"
    path.write_text(text)
    return path


def test_a_second_load_takes_the_cached_parse_with_its_lines(tmp_path: Path, mocker: pytest_mock.MockerFixture) -> None:
    path = _config(tmp_path)
    first = yamlsource.load_yaml_layer(path)
    parse = mocker.patch.object(yamlsource, "_parse", side_effect=AssertionError("parsed again"))
    second = yamlsource.load_yaml_layer(path)
    assert second.data == first.data == {"suite": "trixie", "sandbox": {"network": False}}
    assert second.origins == first.origins and second.origins[("sandbox", "network")] == f"{path}:3"
    path.write_text("suite: sid\n")  # another size, mtime and ctime: a miss
    parse.side_effect = None
    parse.return_value = yamlsource.Layer({"suite": "sid"}, {("suite",): f"{path}:1"}, str(path))
    assert yamlsource.load_yaml_layer(path).data == {"suite": "sid"} and parse.call_count == 1


def test_a_cache_others_can_write_is_not_used(tmp_path: Path, mocker: pytest_mock.MockerFixture) -> None:
    path = _config(tmp_path)
    yamlsource.load_yaml_layer(path)
    directory = parsed_cache.cache_dir()
    assert directory is not None and any(directory.iterdir())
    os.chmod(directory, 0o777)
    try:
        parse = mocker.spy(yamlsource, "_parse")
        yamlsource.load_yaml_layer(path)
        assert parse.call_count == 1
    finally:
        os.chmod(directory, 0o700)


def test_values_json_cannot_hold_are_not_cached(tmp_path: Path) -> None:
    path = _config(tmp_path, "description: 2026-12-01\n")  # YAML reads a date
    info = path.stat()
    yamlsource.load_yaml_layer(path)
    assert parsed_cache.load(str(path), info) is None


def test_syntax_errors_still_name_file_and_line(tmp_path: Path) -> None:
    path = _config(tmp_path, "suite: [trixie\n")
    with pytest.raises(Exception, match=r"root.yaml:2: invalid YAML"):
        yamlsource.load_yaml_layer(path)


def test_a_warm_load_does_not_import_yaml(tmp_path: Path) -> None:
    path = _config(tmp_path)
    probe = ("import sys\nfrom pathlib import Path\nfrom deb_mock.config.yamlsource import load_yaml_layer\n"
             f"load_yaml_layer(Path({str(path)!r}))\nprint('yaml' in sys.modules)\n")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    runs = [subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
            for _ in range(2)]
    assert [r.stdout.strip() for r in runs] == ["True", "False"]


def test_a_miss_prunes_old_entries_and_keeps_the_newest(tmp_path: Path, mocker: pytest_mock.MockerFixture) -> None:
    directory = tmp_path / "cache"
    directory.mkdir()
    now = 2_000_000_000.0
    for number in range(8):
        entry = directory / f"{number:064x}.json"
        entry.write_text("{}")
        os.utime(entry, (now - number * 10, now - number * 10))
    stale = directory / ("f" * 64 + ".json")
    stale.write_text("{}")
    os.utime(stale, (now - parsed_cache.MAX_AGE_SECONDS - 1,) * 2)
    mocker.patch.object(parsed_cache, "MAX_ENTRIES", 5)
    parsed_cache.prune(directory, now=now)
    assert sorted(p.name for p in directory.iterdir()) == [f"{n:064x}.json" for n in range(5)]


def test_storing_a_parse_prunes_the_cache(tmp_path: Path) -> None:
    directory = parsed_cache.cache_dir()
    assert directory is not None
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    stale = directory / ("e" * 64 + ".json")
    stale.write_text("{}")
    os.utime(stale, (1.0, 1.0))
    path = _config(tmp_path)
    yamlsource.load_yaml_layer(path)
    assert not stale.exists() and parsed_cache.load(str(path), path.stat()) is not None
