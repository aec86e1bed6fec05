"""Stage 4b: a commit's tree as an OCI image (bootc's container form), exported to a layout or archive, or pushed.

Its own module beside the pipeline: the container form shares only the tree
and the tools with the disk, and the pipeline is the house's largest module.
"""

from __future__ import annotations

import os
from pathlib import Path

from deb_mock.digests import file_digest
from deb_mock.layerstore import remove_tree
from deb_mock.sandbox.spec import Bind, Mount

from . import oci
from .image_layers import digest_of
from .pipeline import IN_OUT, IN_TREE, IN_WORK, Pipeline
from .stage_dirs import StageDirs

OCI_FORMAT = 1


class ContainerStage:
    """Stage 4b: the OCI image of a commit's tree (cached on the tree, the commit and the settings)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def build(self, checksum: str) -> tuple[Path, dict[str, object]]:
        pipeline, settings = self.pipeline, self.pipeline.settings
        tree = pipeline.tree()
        tools = pipeline.tools()
        key = digest_of(OCI_FORMAT, tree.key, checksum, tools.info["key"], settings.oci_compression)
        done = pipeline.cached("oci", key)
        if done is not None:
            return done[0] / "layout", done[1]
        with pipeline.root.logs.stage("bootc-oci"):
            pipeline.root.console.info(f"bootc: writing the OCI image ({settings.oci_compression} layer)")
            work = StageDirs(pipeline.top, "oci").fresh(key)
            mounts: list[Mount] = [Bind(str(tree.path), IN_TREE), Bind(str(work), IN_WORK, readonly=False)]
            names = sorted(os.listdir(tree.path))
            pipeline.run_tool(oci.tar_command(IN_TREE, f"{IN_WORK}/layer.tar", tree.epoch, names), "bootc-oci", mounts,
                       tree.epoch)
            diff_id = file_digest(work / "layer.tar")
            if settings.oci_compression == "none":
                layer = work / "layer.tar"
            else:
                suffix = {"gzip": ".gz", "zstd": ".zst"}[settings.oci_compression]
                pipeline.run_tool(["/bin/sh", "-c", '"$@" < "$0.tar" > "$0.tar.part"', f"{IN_WORK}/layer",
                            *oci.COMPRESS[settings.oci_compression]], "bootc-oci", mounts, tree.epoch)
                (work / "layer.tar").unlink()
                layer = work / f"layer.tar{suffix}"
                (work / "layer.tar.part").rename(layer)
            labels = {"containers.bootc": "1", "ostree.bootable": "1", "ostree.linux": tree.kver,
                      "ostree.commit": checksum, "ostree.ref": pipeline.ref,
                      "org.opencontainers.image.version": f"{pipeline.root.config.suite}.{tree.epoch}"}
            digest = oci.write_layout(work / "layout", layer, diff_id, settings.oci_compression, arch=pipeline.arch,
                                      epoch=tree.epoch, labels=labels, tag=settings.oci_tag)
            info: dict[str, object] = {"key": key, "commit": checksum, "manifest_digest": digest,
                                       "layer_diff_id": f"sha256:{diff_id}"}
            StageDirs(pipeline.top, "oci").finish(work, info)
        pipeline.root.discard_scratch("bootc-tools")
        return work / "layout", info

    def export(self, dest: oci.Destination, checksum: str) -> dict[str, object]:
        """Copy the cached layout to ``dest`` (a directory or an archive), replacing it atomically.

        The tag lives only in index.json, so another tag costs a copy, not a new layer.
        """
        pipeline = self.pipeline
        layout, info = self.build(checksum)
        staging = pipeline.top / "oci-export"
        if staging.exists():
            remove_tree(staging)
        parent = dest.path.parent
        tmp = parent / f".{dest.path.name}.tmp-{os.getpid()}"
        mounts: list[Mount] = [Bind(str(pipeline.top), IN_TREE, readonly=False),
                               Bind(str(parent), IN_OUT, readonly=False)]
        epoch = pipeline.tree().epoch
        inside = f"{IN_TREE}/{staging.name}"
        with pipeline.root.logs.stage("bootc-export"):
            try:
                cached = f"{IN_TREE}/{layout.relative_to(pipeline.top)}"
                pipeline.run_tool(["cp", "--recursive", "--link", "--", cached, inside], "bootc-export", mounts, epoch)
                oci.retag(staging, dest.tag)
                if dest.transport == "oci":
                    pipeline.run_tool(["cp", "--recursive", "--", inside, f"{IN_OUT}/{tmp.name}"], "bootc-export",
                                      mounts, epoch)
                else:
                    pipeline.run_tool(["tar", "--create", "--format=pax", "--sort=name", "--numeric-owner",
                                       "--owner=0", "--group=0", f"--mtime=@{epoch}",
                                       "--pax-option=delete=atime,delete=ctime",
                                       "--directory", inside, "--file", f"{IN_OUT}/{tmp.name}", "."],
                                      "bootc-export", mounts, epoch)
                _replace(tmp, dest.path)
            finally:
                if tmp.exists() or tmp.is_symlink():
                    remove_tree(tmp)
                if staging.exists():
                    remove_tree(staging)
                pipeline.root.discard_scratch("bootc-tools")
        return {**info, "destination": str(dest)}


    def push(self, dest: oci.RegistryDestination, checksum: str) -> dict[str, object]:
        """The cached OCI image to a registry with the target release's skopeo (digests preserved)."""
        pipeline = self.pipeline
        layout, info = self.build(checksum)
        root_fs = pipeline.root.new_scratch("bootc-push", pipeline.skopeo_tools().stack())
        tls = ["--dest-tls-verify=false"] if dest.loopback else []
        with pipeline.root.logs.stage("bootc-push"):
            pipeline.root.console.info(f"bootc: pushing the OCI image to {dest}")
            try:
                pipeline.root.checked_run(["skopeo", "--insecure-policy", "copy", "--quiet", "--preserve-digests",
                                           *tls, f"oci:{IN_TREE}", str(dest)], "bootc-push", root_fs=root_fs,
                                          network=True, mounts=[Bind(str(layout), IN_TREE)])
            finally:
                pipeline.root.discard_scratch("bootc-push")
        return {**info, "destination": str(dest)}


def _replace(new: Path, target: Path) -> None:
    """Put ``new`` at ``target``; an old directory is moved aside first and removed after."""
    if target.is_dir() and not target.is_symlink():
        aside = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, aside)
        os.replace(new, target)
        remove_tree(aside)
    else:
        os.replace(new, target)
