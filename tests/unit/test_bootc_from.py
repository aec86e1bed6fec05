"""--bootc-from's pure parts: image names, whiteouts from tar's listing, the image's creation time.

The unpack itself (skopeo, tar, the whiteouts applied) runs for real in
tests/integration/test_bootc.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deb_mock.errors import UsageError
from plugins.bootc.from_image import ImageSource, NotBootable, _created, _unescape, whiteouts
from plugins.bootc.oci import RegistryDestination, parse_destination


def test_image_names_are_skopeos(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img.tar").write_bytes(b"")
    layout = ImageSource.parse(f"oci:{tmp_path}/img:v1")
    assert (layout.transport, layout.path, layout.reference) == ("oci", tmp_path / "img", "v1")
    assert layout.inside() == "oci:/deb-mock/source:v1"
    assert ImageSource.parse(f"oci:{tmp_path}/img").inside() == "oci:/deb-mock/source"
    archive = ImageSource.parse(f"oci-archive:{tmp_path}/img.tar")
    assert (archive.path, archive.reference) == (tmp_path / "img.tar", "")
    docker = ImageSource.parse(f"docker-archive:{tmp_path}/img.tar")
    assert docker.inside() == "docker-archive:/deb-mock/source"
    storage = ImageSource.parse("containers-storage:localhost/derived:latest")
    assert storage.path is None and storage.inside() == "containers-storage:localhost/derived:latest"


@pytest.mark.parametrize("text, says", [
    ("docker://example/img", "expected one of"),
    ("img.tar", "expected one of"),
    ("oci:", "expected one of"),
    ("oci-archive:/nonexistent/img.tar", "is not a file"),
    ("oci:/nonexistent/layout:v1", "is not a directory"),
])
def test_bad_image_names_are_usage_errors(text: str, says: str) -> None:
    with pytest.raises(UsageError, match=says):
        ImageSource.parse(text)


def test_whiteouts_name_what_the_layers_below_lose() -> None:
    listing = "\n".join([
        "./usr/bin/.wh.tree",
        "usr/share/doc/tree/",
        "usr/share/doc/tree/.wh..wh..opq",
        "usr/share/doc/tree/derived",
        ".wh.opt",
        "etc/a\\nb/.wh.x\\040y",
        "usr/bin/dm-derived",
    ])
    removed, opaque = whiteouts(listing)
    assert removed == ["usr/bin/tree", "opt", "etc/a\nb/x y"]
    assert opaque == ["usr/share/doc/tree"]


def test_a_whiteout_that_leaves_the_tree_is_refused() -> None:
    with pytest.raises(NotBootable, match="leaves the tree"):
        whiteouts("usr/../../.wh.etc")


def test_tars_escapes_are_undone() -> None:
    assert _unescape("a\\\\b\\tc\\303\\251") == "a\\b\tcé"


def test_the_creation_time_is_the_images() -> None:
    assert _created({"created": "2025-11-02T10:00:00Z"}) == 1762077600
    assert _created({"created": "2025-11-02T10:00:00.123456789Z"}) == 1762077600
    assert _created({}) == 0


def test_a_registry_destination_is_dockers_reference() -> None:
    dest = parse_destination("docker://127.0.0.1:5000/deb-mock/image:v1", "latest")
    assert isinstance(dest, RegistryDestination)
    assert (str(dest), dest.loopback) == ("docker://127.0.0.1:5000/deb-mock/image:v1", True)
    remote = parse_destination("docker://registry.example/farm/image", "latest")
    assert isinstance(remote, RegistryDestination)
    assert (remote.tag, remote.loopback) == ("latest", False)
    for bad in ("docker://127.0.0.1:5000", "docker://host/Upper", "docker:/x/y", "docker://h/x:t/a", "docker://example/x"):
        with pytest.raises(UsageError, match="docker://HOST"):
            parse_destination(bad, "latest")
