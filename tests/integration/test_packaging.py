"""A wheel and an editable install both carry and load the built-in plugins and configs."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.integration.conftest import DebMock

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
    for module in ("pipeline", "container", "initramfs", "disk", "oci", "qemu", "transforms", "image_layers",
                   "stage_dirs", "settings"):
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


@pytest.mark.root
@pytest.mark.network
def test_deb_mock_builds_its_own_package_which_installs_and_runs(dm: DebMock, trixie: dict[str, object],
                                                                 tmp_path: Path) -> None:
    """--buildsrc of this checkout gives a lintian-clean .deb that apt installs into a fresh root, where it works."""
    out = tmp_path / "out"
    built = dm.json("-r", "trixie-amd64", "--buildsrc", "--sources", str(REPO), "--resultdir", str(out))
    assert built["exit_code"] == 0, built
    debs = sorted(out.glob("deb-mock_*_all.deb"))
    assert len(debs) == 1, sorted(p.name for p in out.iterdir())
    tags = [line for line in (out / "lintian.log").read_text().splitlines() if line[:2] in ("E:", "W:")]
    assert tags == [], tags
    own = ("-r", "trixie-amd64", "--uniqueext", "own-package")
    dm.ok(*own, "--install", str(debs[0]), "man-db")
    script = ("set -e; deb-mock --version; deb-mock --list-chroots; deb-mock --list-plugins; man -w deb-mock; "
              "test -f /usr/share/bash-completion/completions/deb-mock; ls /etc/deb-mock")
    lines = dm.ok(*own, "--chroot", script).stdout.splitlines()
    assert lines[0] == "deb-mock 0.1.0", lines
    assert any(line.startswith("trixie-amd64 ") for line in lines), lines
    listed = {line.split()[0] for line in lines if line.split() and line.split()[0] in BUILTINS}
    assert listed == set(BUILTINS), lines
    assert "/usr/share/man/man1/deb-mock.1.gz" in lines and "default.yaml" in lines, lines
    dm.ok(*own, "--scrub=chroot")
