"""A wheel and an editable install both carry and load the built-in plugins and configs."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow]

PROBE = (
    "import deb_mock, json; from deb_mock.plugin_manager import make_plugin_manager;"
    "from deb_mock.resources import bundled_chroot_configs_dir, bundled_etc_dir;"
    "pm = make_plugin_manager();"
    "print(json.dumps({'file': deb_mock.__file__, 'plugins': sorted(n for n, _ in pm.list_name_plugin()),"
    "'configs': sorted(p.name for p in bundled_chroot_configs_dir().glob('*.yaml')),"
    "'etc': sorted(p.name for p in bundled_etc_dir().glob('*.yaml'))}))"
)
BUILTINS = ["apt_cache", "bind_mount", "bootc", "ccache", "chroot_scan", "hw_info", "lintian", "root_cache",
            "tmpfs"]
CONFIGS = ["bookworm-amd64.yaml", "sid-amd64.yaml", "trixie-amd64.yaml", "trixie-arm64.yaml"]


def test_wheel_contains_and_loads_every_builtin_plugin(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist"), str(REPO)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("deb_mock-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for plugin in BUILTINS:
        assert f"deb_mock/plugins/{plugin}.py" in names or f"deb_mock/plugins/{plugin}/__init__.py" in names
    for module in ("pipeline", "disk", "oci", "qemu", "transforms", "image_layers", "stage_dirs", "settings"):
        assert f"deb_mock/plugins/bootc/{module}.py" in names
    for config in CONFIGS:
        assert f"deb_mock/data/chroot_configs/{config}" in names
    assert "deb_mock/data/chroot_configs/templates/debian.yaml" in names
    assert "deb_mock/data/etc/default.yaml" in names
    assert "deb_mock/sandbox/init.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[deb_mock]" in text and "bind_mount = deb_mock.plugins.bind_mount" in text
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # -S: no .pth files, so the editable install of this checkout cannot answer the imports;
    # the dependencies come from the plain site-packages directory.
    deps = sysconfig.get_paths()["purelib"]
    probe = subprocess.run([sys.executable, "-S", "-c", PROBE],
                           env={"PYTHONPATH": f"{site}:{deps}", "PATH": "/usr/bin:/bin"},
                           capture_output=True, text=True, check=False, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    import json

    data = json.loads(probe.stdout)
    assert data["file"].startswith(str(site))
    assert data["plugins"] == BUILTINS
    assert data["configs"] == CONFIGS
    assert "default.yaml" in data["etc"] and "site-defaults.yaml" in data["etc"]


def test_editable_or_source_install_loads_the_same(tmp_path: Path) -> None:
    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                           cwd=tmp_path)
    import json

    data = json.loads(probe.stdout)
    assert data["file"].startswith(str(REPO))
    assert data["plugins"] == BUILTINS
    assert data["configs"] == CONFIGS
