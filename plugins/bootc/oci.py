"""The bootc container image: an OCI image layout with one reproducible layer.

The layer is the committed tree with /etc where containers keep it, written by
the target release's tar with sorted names, numeric owners, clamped mtimes and
xattrs, and without atime/ctime records; the config carries the labels bootc
looks for (containers.bootc, ostree.bootable, ostree.linux). skopeo and podman
read it as ``oci:DIR:TAG``; ``oci-archive:FILE`` is the same layout in a tar.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import re
from pathlib import Path

from deb_mock.digests import file_digest
from deb_mock.errors import UsageError
from deb_mock.sandbox.spec import DEFAULT_PATH

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
               "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
               "none": "application/vnd.oci.image.layer.v1.tar"}
COMPRESS = {"gzip": ["gzip", "-n", "-6"], "zstd": ["zstd", "-q", "-T0", "-3"], "none": []}
GOARCH = {"amd64": "amd64", "arm64": "arm64", "armhf": "arm", "i386": "386", "ppc64el": "ppc64le",
          "s390x": "s390x", "riscv64": "riscv64"}


@dataclasses.dataclass(frozen=True)
class Destination:
    """``oci:DIR[:TAG]`` or ``oci-archive:FILE[:TAG]``."""

    transport: str
    path: Path
    tag: str

    @classmethod
    def parse(cls, text: str, default_tag: str) -> Destination:
        transport, sep, rest = text.partition(":")
        if not sep or transport not in ("oci", "oci-archive") or not rest:
            raise UsageError(f"--bootc-container '{text}': expected oci:DIR[:TAG], oci-archive:FILE[:TAG] or "
                             "docker://HOST[:PORT]/REPOSITORY[:TAG]")
        path, sep, tag = rest.rpartition(":")
        if not sep or "/" in tag or not tag:
            path, tag = rest, default_tag
        return cls(transport, Path(path).absolute(), tag)

    def __str__(self) -> str:
        return f"{self.transport}:{self.path}:{self.tag}"


@dataclasses.dataclass(frozen=True)
class RegistryDestination:
    """``docker://HOST[:PORT]/REPOSITORY[:TAG]``: a registry skopeo pushes the image to."""

    host: str
    repository: str
    tag: str

    @classmethod
    def parse(cls, text: str, default_tag: str) -> RegistryDestination:
        match = re.fullmatch(r"docker://([A-Za-z0-9.-]+(?::\d{1,5})?)/([a-z0-9]+(?:[._/-][a-z0-9]+)*)"
                             r"(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?", text)
        # a first component without a dot or a port is a Docker Hub namespace to skopeo: never guess a registry
        host = match.group(1) if match else ""
        if not match or not ("." in host or ":" in host or host == "localhost"):
            raise UsageError(f"--bootc-container '{text}': expected docker://HOST[:PORT]/REPOSITORY[:TAG] "
                             "(HOST with a dot or a port, or localhost)")
        return cls(match.group(1), match.group(2), match.group(3) or default_tag)

    @property
    def loopback(self) -> bool:
        """A registry on this machine: plain HTTP is allowed (as for a test or a local cache registry)."""
        name = self.host.rsplit(":", 1)[0] if self.host.count(":") == 1 else self.host
        return name == "localhost" or name.startswith("127.")

    def __str__(self) -> str:
        return f"docker://{self.host}/{self.repository}:{self.tag}"


def parse_destination(text: str, default_tag: str) -> Destination | RegistryDestination:
    """What --bootc-container names: a layout, an archive, or a registry."""
    if text.startswith("docker://"):
        return RegistryDestination.parse(text, default_tag)
    return Destination.parse(text, default_tag)


def tar_command(tree: str, output: str, epoch: int, names: list[str]) -> list[str]:
    """GNU tar options that give the same bytes for the same tree (GNU tar's reproducible-archive options)."""
    return ["tar", "--create", "--format=pax", "--sort=name", "--numeric-owner", f"--mtime=@{epoch}",
            "--clamp-mtime", "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
            "--xattrs", "--xattrs-include=*", "--acls",
            # the commit keeps /etc as /usr/etc; a container image has it at /etc (not symlink targets: S)
            "--transform=s,^usr/etc$,etc,S", "--transform=s,^usr/etc/,etc/,S",
            "--directory", tree, "--file", output, "--", *names]


def _blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs/sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _json(data: object) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def write_layout(layout: Path, layer: Path, diff_id: str, compression: str, *, arch: str, epoch: int,
                 labels: dict[str, str], tag: str) -> str:
    """Write blobs, config, manifest and index around the compressed ``layer``; return the manifest digest."""
    blobs = layout / "blobs/sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    layer_digest = file_digest(layer)
    layer_size = layer.stat().st_size
    layer.rename(blobs / layer_digest)
    created = datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    config = {
        "created": created,
        "architecture": GOARCH.get(arch, arch),
        "os": "linux",
        "config": {"Labels": labels, "Cmd": ["/sbin/init"],
                   "Env": [f"PATH={DEFAULT_PATH}"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created": created, "created_by": "deb-mock --bootc-container"}],
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, **_blob(layout, _json(config))},
        "layers": [{"mediaType": MEDIA_LAYER[compression], "digest": f"sha256:{layer_digest}", "size": layer_size}],
        "annotations": {"org.opencontainers.image.created": created},
    }
    manifest_blob = _blob(layout, _json(manifest))
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": MEDIA_MANIFEST, **manifest_blob,
                       "annotations": {"org.opencontainers.image.ref.name": tag}}],
    }
    (layout / "index.json").write_bytes(_json(index))
    (layout / "oci-layout").write_bytes(_json({"imageLayoutVersion": "1.0.0"}))
    return str(manifest_blob["digest"])


def retag(layout: Path, tag: str) -> None:
    """Name the layout's image ``tag`` (index.json is replaced, never written in place: it may be a hard link)."""
    index_path = layout / "index.json"
    index = json.loads(index_path.read_text())
    for manifest in index["manifests"]:
        manifest.setdefault("annotations", {})["org.opencontainers.image.ref.name"] = tag
    fresh = layout / "index.json.new"
    fresh.write_bytes(_json(index))
    os.replace(fresh, index_path)
