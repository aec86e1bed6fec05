"""bootc: a finished root → OSTree commit → bootc OCI image → bootable disk image, and a boot in qemu.

Modes::

    deb-mock -r trixie-amd64 --bootc-commit ./repo        # OSTree commit (archive repo); ref and id printed
    deb-mock -r trixie-amd64 --bootc-container oci:./img  # or oci-archive:img.tar[:TAG]
    deb-mock -r trixie-amd64 --bootc-image out.qcow2      # .raw .vmdk .vdi .vhd .vhdx .tar.gz .ova too
    deb-mock --bootc-run out.qcow2                        # UEFI boot, serial console on the terminal

The root itself is never changed (see pipeline.py for the stages and their
caches); the settings are the ``plugins.bootc`` section (settings.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from deb_mock import hookimpl
from deb_mock.errors import ConfigError, ResultDirError, SandboxError, UsageError
from deb_mock.layerstore import remove_tree
from deb_mock.result import Artifact

from .settings import PLUGIN_NAME, Settings

if TYPE_CHECKING:
    from deb_mock.services import RootServices

    from . import lint, qemu
    from .pipeline import Pipeline

MODES = {"bootc_image": True, "bootc_commit": True, "bootc_container": True, "bootc_run": False, "bootc_lint": True}


class LintFailed(ConfigError):
    """The image breaks bootc's conventions (exit 3, as a wrong configuration)."""


@hookimpl
def debmock_config_sections() -> dict[str, type]:
    return {PLUGIN_NAME: Settings}


@hookimpl
def debmock_addoption(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("bootc (bootable images from the root)")
    add = group.add_argument
    add("--bootc-image", metavar="FILE", type=Path,
        help="write a bootable disk image of the root (.qcow2, .raw, .img, .vmdk, .vdi, .vhd, .vhdx, .tar.gz, .ova)")
    add("--bootc-commit", metavar="REPO", type=Path, help="commit the root to an OSTree archive repository")
    add("--bootc-container", metavar="DEST",
        help="write a bootc OCI image: oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker://HOST[:PORT]/REPO[:TAG]")
    add("--bootc-from", metavar="IMAGE",
        help="make the image, commit or container from a bootc container image instead of the root: "
             "oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE or containers-storage:REF")
    add("--bootc-run", metavar="FILE", type=Path, help="boot a disk image in qemu (UEFI, serial console)")
    add("--bootc-image-size", metavar="SIZE", help="disk image size (8G; default: plugins.bootc.disk_size)")
    add("--bootc-run-timeout", metavar="SECONDS", type=float,
        help="boot check: succeed at the login prompt, fail (exit 11) after SECONDS")
    add("--bootc-run-size", metavar="SIZE",
        help="grow the throw-away overlay of --bootc-run to SIZE (20G), to see a cloud image's root grow")
    add("--bootc-lint", metavar="DIR", nargs="?", const="",
        help="check the root's image tree (or the tree DIR) as `bootc container lint` does; exit 3 on errors")
    add("--bootc-lint-strict", action="store_true",
        help="warnings of the lint fail the run too (exit 3), before every image, commit or container")
    add("--bootc-run-drive", metavar="FILE", type=Path, action="append", default=[],
        help="attach FILE as a read-only raw disk to --bootc-run (repeatable)")


@hookimpl
def debmock_modes() -> dict[str, bool]:
    return dict(MODES)


@hookimpl
def debmock_scrub_kinds() -> list[str]:
    return ["bootc"]


@hookimpl
def debmock_scrub(root: RootServices, kinds: frozenset[str]) -> None:
    if kinds & {"bootc", "all"}:
        from .boot_tools import tools_dir

        remove_tree(root.paths.top / "bootc")
        remove_tree(tools_dir(root.config))  # shared by every root, like the apt cache: made again by the next boot


@hookimpl
def debmock_run_mode(root: RootServices, mode: str, args: argparse.Namespace) -> int | None:
    if mode not in MODES:
        return None
    if args.bootc_from and (mode == "bootc_run" or (mode == "bootc_lint" and args.bootc_lint)):
        raise UsageError("--bootc-from goes with --bootc-image, --bootc-commit, --bootc-container or --bootc-lint")
    if mode == "bootc_run":
        return _boot(root, args)
    from .stage_dirs import empty_trash

    try:
        return _make(root, mode, args)
    finally:
        empty_trash(root.paths.top / "bootc")


def _make(root: RootServices, mode: str, args: argparse.Namespace) -> int:
    """--bootc-image, --bootc-commit, --bootc-container and --bootc-lint: the pipeline's stages as far as needed."""
    # the pipeline's modules are imported only by runs that use them: every other run starts faster
    from . import lint, oci
    from .container import ContainerStage
    from .pipeline import Pipeline

    pipeline = Pipeline(root)
    if args.bootc_from:
        _from_image(pipeline, args.bootc_from)
    if args.bootc_image_size:
        pipeline.settings = dataclasses.replace(pipeline.settings, disk_size=args.bootc_image_size)
    report: dict[str, object] = {"ref": pipeline.ref}
    root.result.extra["bootc"] = report
    if mode == "bootc_lint" and args.bootc_lint:
        _lint_report(root, args, report, lint.lint_tree(_lint_dir(args.bootc_lint), pipeline.arch), show=True)
        return 0
    findings = [lint.Finding(**f) for f in pipeline.tree().lint]  # type: ignore[arg-type]
    report.update(pipeline.source.report if pipeline.source else {})
    _lint_report(root, args, report, findings, show=mode == "bootc_lint")
    if mode == "bootc_lint":
        return 0
    if mode == "bootc_commit":
        repo = _writable_target(args.bootc_commit, "--bootc-commit", directory=True)
        if repo.exists() and any(repo.iterdir()) and not (repo / "config").is_file():
            raise ResultDirError(f"--bootc-commit {repo}: the directory exists but is not an OSTree repository")
        checksum = pipeline.commit(repo)
        report.update(commit=checksum, repo=str(repo))
        _print(args, f"{pipeline.ref} {checksum}")
    elif mode == "bootc_container":
        target = oci.parse_destination(args.bootc_container, pipeline.settings.oci_tag)
        if isinstance(target, oci.RegistryDestination):
            report.update(ContainerStage(pipeline).push(target, pipeline.internal_commit()))
            _print(args, f"{target} {report['manifest_digest']}")
            return 0
        dest = target
        _writable_target(dest.path, "--bootc-container", directory=dest.transport == "oci")
        if dest.transport == "oci" and dest.path.is_dir() and any(dest.path.iterdir()) \
                and not (dest.path / "oci-layout").is_file():
            raise ResultDirError(f"--bootc-container {dest.path}: the directory exists and is not an OCI layout")
        checksum = pipeline.internal_commit()
        report.update(ContainerStage(pipeline).export(dest, checksum))
        if dest.transport == "oci-archive":
            root.result.artifacts.append(Artifact.of(dest.path))
        _print(args, f"{dest} {report['manifest_digest']}")
    else:
        out = _writable_target(args.bootc_image, "--bootc-image", directory=False)
        checksum = pipeline.internal_commit()
        report.update(pipeline.write_disk(out, checksum))
        artifact = Artifact.of(out)
        root.result.artifacts.append(artifact)
        _print(args, f"{out} {artifact.sha256}")
    return 0


def _boot(root: RootServices, args: argparse.Namespace) -> int:
    """--bootc-run: boot a disk image in qemu (a check with --bootc-run-timeout)."""
    from . import disk, qemu

    settings: Settings = root.config.plugin(PLUGIN_NAME)
    try:
        size = disk.parse_size(args.bootc_run_size, "--bootc-run-size") if args.bootc_run_size else None
    except ConfigError as exc:
        raise UsageError(exc.message) from None
    seconds = qemu.boot(args.bootc_run, accel=settings.qemu_accel, memory=settings.qemu_memory,
                        cpus=settings.qemu_cpus, drives=args.bootc_run_drive, timeout=args.bootc_run_timeout,
                        echo=not args.quiet, size=size, launcher=_launcher(root, settings))
    if args.bootc_run_timeout is not None:
        root.console.info(f"bootc: login prompt after {seconds:.0f}s")
    return 0


def _launcher(root: RootServices, settings: Settings) -> qemu.Launcher | None:
    """qemu from the run's release (boot_tools) under TCG when configured; else the host's.

    Under KVM the emulator's speed hardly counts and /dev/kvm is not passed
    into a sandbox. A rootless --bootc-run starts outside any user namespace
    (the host's qemu needs none); the tools' tree holds the subordinate ids its
    packages own, and the sandbox qemu runs in is made from inside the run's
    namespace, so this run enters it now, as every rootless root mode does.
    A caller who cannot have one (no subordinate ids, no uidmap) boots with
    the host's qemu, as before the tools came, and is told why.
    """
    from deb_mock import userns

    if settings.qemu_from != "tools" or settings.qemu_accel != "tcg":
        return None
    if os.geteuid() != 0 and not userns.is_rootless_run():
        try:
            userns.enter()
        except SandboxError as exc:
            root.console.warn(f"bootc: booting with the host's qemu: the release's boot tools need a user "
                              f"namespace: {exc.message}" + (f"; {exc.hint}" if exc.hint else ""))
            return None
    from .boot_tools import ToolsQemu

    return ToolsQemu(root)


def _from_image(pipeline: Pipeline, text: str) -> None:
    """--bootc-from: the pipeline's tree comes from a container image."""
    from .from_image import FromImage, ImageSource

    pipeline.source = FromImage(pipeline, ImageSource.parse(text))


def _lint_dir(text: str) -> Path:
    path = Path(text).absolute()
    if not path.is_dir():
        raise UsageError(f"--bootc-lint {text}: not a directory")
    return path


def _lint_report(root: RootServices, args: argparse.Namespace, report: dict[str, object],
                 findings: list[lint.Finding], *, show: bool) -> None:
    """Findings into result.json and onto the terminal; exit 3 on errors, or on any finding with strict."""
    report["lint"] = [dataclasses.asdict(f) for f in findings]
    errors = [f for f in findings if f.severity == "error"]
    if show:
        for finding in findings:
            _print(args, str(finding))
    elif findings and not errors:
        root.console.warn(f"bootc lint: {len(findings)} warning(s) ({', '.join(f.check for f in findings)}); "
                          "--bootc-lint shows them")
    if errors or (args.bootc_lint_strict and findings):
        raise LintFailed(f"bootc lint: {len(errors)} error(s), {len(findings) - len(errors)} warning(s)"
                         + (" (--bootc-lint-strict)" if not errors else "") + ":\n"
                         + "\n".join(str(f) for f in findings))


def _writable_target(path: Path, flag: str, *, directory: bool) -> Path:
    """An absolute output path whose parent exists and is writable (exit 70 otherwise)."""
    path = path.absolute()
    parent = path.parent
    if not parent.is_dir():
        raise ResultDirError(f"{flag} {path}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ResultDirError(f"{flag} {path}: the directory {parent} is not writable")
    if path.exists() and path.is_dir() != directory:
        kind = "a directory" if path.is_dir() else "a file"
        raise ResultDirError(f"{flag} {path}: is {kind}")
    if not path.name:
        raise UsageError(f"{flag}: give a file name")
    return path


def _print(args: argparse.Namespace, text: str) -> None:
    if not args.json:
        print(text, file=sys.stdout, flush=True)
