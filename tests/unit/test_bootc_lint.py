"""The bootc lint over small trees made here (test_bootc.py lints a real image and a tree through the CLI)."""

from __future__ import annotations

import os
from pathlib import Path

from deb_mock.plugins.bootc import lint


def _tree(top: Path, *, kernels: tuple[str, ...] = ("6.12.1",), initramfs: bool = True) -> Path:
    for kver in kernels:
        modules = top / "usr/lib/modules" / kver
        modules.mkdir(parents=True)
        (modules / "vmlinuz").write_bytes(b"kernel")
        if initramfs:
            (modules / "initramfs.img").write_bytes(b"initramfs")
    (top / "usr/etc").mkdir(parents=True)
    (top / "usr/etc/hostname").write_text("h\n")
    (top / "boot").mkdir()
    (top / "var/lib").mkdir(parents=True)
    return top


def _checks(findings: list[lint.Finding]) -> list[tuple[str, str]]:
    return [(f.severity, f.check) for f in findings]


def test_a_bootc_image_tree_is_clean(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    (tree / "usr/lib/tmpfiles.d").mkdir(parents=True)
    (tree / "usr/lib/tmpfiles.d/x.conf").write_text("# made per machine\nf /var/lib/made 0644 - - -\n")
    (tree / "var/lib/made").write_text("")  # tmpfiles.d makes it: fine
    assert lint.lint_tree(tree, "amd64") == []


def test_two_kernels_a_file_in_var_and_a_full_boot_are_three_findings(tmp_path: Path) -> None:
    tree = _tree(tmp_path, kernels=("6.12.1", "6.12.2"))
    (tree / "var/lib/foo").write_text("state")
    (tree / "boot/vmlinuz-6.12.1").write_bytes(b"")
    os.symlink("/etc/passwd", tree / "var/lib/link")  # a link is counted, never followed
    findings = lint.lint_tree(tree, "amd64")
    assert _checks(findings) == [("error", "kernel"), ("warning", "boot"), ("warning", "var")]
    assert "6.12.1, 6.12.2" in findings[0].message and "/boot/vmlinuz-6.12.1" in findings[1].message
    assert "2 file(s)" in findings[2].message and "/var/lib/foo" in findings[2].message


def test_etc_twice_no_initramfs_and_bad_kargs(tmp_path: Path) -> None:
    tree = _tree(tmp_path, initramfs=False)
    (tree / "etc").mkdir()
    (tree / "etc/hostname").write_text("other\n")
    kargs = tree / "usr/lib/bootc/kargs.d"
    kargs.mkdir(parents=True)
    (kargs / "10-good.toml").write_text('kargs = ["console=ttyS0"]\nmatch-architectures = ["x86_64"]\n')
    (kargs / "20-bad.toml").write_text('kargs = "console=ttyS0"\n')
    (kargs / "30-broken.toml").write_text("kargs = [\n")
    (kargs / "40-extra.toml").write_text('kargs = []\nwhat = 1\n')
    findings = lint.lint_tree(tree, "amd64")
    assert _checks(findings) == [("error", "etc"), ("error", "kargs"), ("error", "kargs"), ("error", "kargs"),
                                 ("warning", "initramfs")]
    text = "\n".join(map(str, findings))
    assert "20-bad.toml: 'kargs' must be a list" in text and "30-broken.toml: not TOML" in text
    assert "40-extra.toml: unknown key(s) what" in text


def test_no_kernel_is_an_error(tmp_path: Path) -> None:
    tree = _tree(tmp_path, kernels=())
    assert _checks(lint.lint_tree(tree, "amd64")) == [("error", "kernel")]


def test_many_files_are_named_up_to_five(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    for index in range(8):
        (tree / f"var/lib/f{index}").write_text("")
    (message,) = [f.message for f in lint.lint_tree(tree, "amd64")]
    assert message.startswith("8 file(s)") and message.endswith("/var/lib/f4 and 3 more")
