"""Where bootc's stages keep their results: ``<root>/bootc/<kind>/<key>``, complete once ``done.json`` exists.

Every stage (image and tools layers, tree, commit, disk, OCI) caches on a
digest of its inputs (``key``). A result is made in a fresh directory and
recorded as complete last, so a crash leaves nothing that looks finished;
when it is complete, results of other inputs of the same kind are stale and
removed. Until then the previous result stays, so a failed run never costs
the cache.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deb_mock.fileio import write_atomic
from deb_mock.layerstore import remove_tree

DONE = "done.json"


class StageDirs:
    """The results of one kind of stage."""

    def __init__(self, top: Path, kind: str) -> None:
        self.directory = top / kind

    def path(self, key: str) -> Path:
        return self.directory / key

    def finished(self, key: str) -> dict[str, Any] | None:
        """What was recorded when the result for ``key`` was completed; None if there is none."""
        try:
            info = json.loads((self.path(key) / DONE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return info if isinstance(info, dict) else None

    def fresh(self, key: str) -> Path:
        """An empty directory for ``key``'s result (an unfinished one of the same key is removed)."""
        path = self.path(key)
        if path.exists():
            remove_tree(path)
        path.mkdir(parents=True)
        return path

    def finish(self, path: Path, info: dict[str, Any]) -> None:
        """Record the result in ``path`` as complete and remove the results of other inputs."""
        write_atomic(path / DONE, json.dumps(info, sort_keys=True))
        for other in self.directory.iterdir():
            if other != path:
                remove_tree(other)
