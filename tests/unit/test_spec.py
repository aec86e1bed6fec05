"""deb_mock.sandbox.spec and runner.init_command: the sandbox as plain data."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType

from deb_mock.sandbox import runner
from deb_mock.sandbox.spec import Bind, DirectoryRoot, OverlayRoot, SandboxSpec, Tmpfs

OVERLAY = OverlayRoot(
    lowers=("/r/layers/b", "/r/base"), upper="/r/upper", work="/r/work", mountpoint="/r/mnt"
)


def spec(**changes: object) -> SandboxSpec:
    values: dict[str, object] = {
        "argv": ("apt-get", "update"),
        "root": OVERLAY,
        "env": {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        "mounts": (Bind("/srv/in", "/in"), Tmpfs("/build", size="1G", mode=0o1777)),
        "network": True,
        "marker": "/r",
    }
    values.update(changes)
    return SandboxSpec(**values)  # type: ignore[arg-type]


def test_to_json_round_trip() -> None:
    data = json.loads(spec().to_json())
    assert data["argv"] == ["apt-get", "update"]
    assert data["env"] == {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    assert data["mounts"] == [
        {"kind": "bind", "source": "/srv/in", "target": "/in", "readonly": True, "create": True,
             "idmap": True},
        {"kind": "tmpfs", "target": "/build", "size": "1G", "mode": 0o1777},
    ]
    assert data["root"] == {
        "kind": "OverlayRoot",
        "lowers": ["/r/layers/b", "/r/base"],
        "upper": "/r/upper",
        "work": "/r/work",
        "mountpoint": "/r/mnt",
    }
    assert data["network"] is True
    assert data["marker"] == "/r"
    assert data["cwd"] == "/"
    assert (data["uid"], data["gid"]) == (0, 0)
    assert data["hostname"] == "deb-mock"
    assert data["sys"] == "ro"
    assert data["tmpfs_tmp"] is False
    assert data["share_resolv_conf"] is True


def test_to_json_directory_root() -> None:
    data = json.loads(spec(root=DirectoryRoot("/r/base.incoming-1", "/r/mnt")).to_json())
    assert data["root"] == {
        "kind": "DirectoryRoot",
        "path": "/r/base.incoming-1",
        "mountpoint": "/r/mnt",
    }


def test_to_json_accepts_any_mapping_as_env() -> None:
    # env is typed Mapping[str, str]; the frozen config hands out read-only mappings
    data = json.loads(spec(env=MappingProxyType({"A": "1"})).to_json())
    assert data["env"] == {"A": "1"}


def test_to_json_without_root_or_mounts() -> None:
    data = json.loads(SandboxSpec(argv=("mmdebstrap", "--version")).to_json())
    assert data["root"] is None
    assert data["mounts"] == []
    assert data["network"] is False


def test_init_command_carries_the_tag_and_fds_but_never_the_spec() -> None:
    the_spec = dataclasses.replace(spec(), env={"http_proxy": "http://user:secret@proxy:3128"}, marker="/r/x")
    argv = runner.init_command(the_spec, 7, 8)
    assert argv == [sys.executable, "-I", "-S", "-c", runner.INIT_LAUNCHER, "--tag=/r/x", "7", "8"]
    assert "secret" not in " ".join(argv)


def test_init_script_exists_beside_runner() -> None:
    assert Path(runner.__file__).with_name("init.py") == runner.INIT_SCRIPT
    assert runner.INIT_SCRIPT.is_file()


def test_the_launcher_imports_the_init_beside_runner_with_no_site_packages() -> None:
    probe = runner.INIT_LAUNCHER.replace("init.main()", "print(init.__file__, 'site' in sys.modules)")
    assert probe != runner.INIT_LAUNCHER
    shown = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=True)
    assert shown.stdout.split() == [str(runner.INIT_SCRIPT), "False"]


def test_init_script_uses_only_the_standard_library() -> None:
    # it runs with -I -S: no site-packages, so deb_mock and third-party modules are out of reach
    source = runner.INIT_SCRIPT.read_text(encoding="utf-8")
    assert "import deb_mock" not in source
    assert "from deb_mock" not in source
