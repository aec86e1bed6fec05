"""A root on disk: the base, snapshot layers, the writable upper, state.json.

    <basedir>/<root>/base/       bootstrapped once, never written after init
    <basedir>/<root>/layers/N/   frozen snapshot layers
    <basedir>/<root>/upper/      the current writable layer (+ work/)
    <basedir>/<root>/mnt/        mount point, used only inside private namespaces
    <basedir>/<root>/state.json  layer stack, digests, times
    <basedir>/<root>.lock        the root's lock (outside, so scrubbing keeps it)

The merged root is an overlay of upper over the layers over base, mounted only
inside the sandbox's own mount namespace.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from deb_mock import dpkg_status
from deb_mock.errors import RootError, UsageError
from deb_mock.fileio import TEMP_INFIX, write_atomic
from deb_mock.names import is_safe_name
from deb_mock.sandbox.spec import OverlayRoot
from deb_mock.spread_dirs import UNIQUE_PREFIX, make_spread_directory

STATE_VERSION = 1
#: where overlayfs keeps whiteout and opaque marks: user.* xattrs (``userxattr``), as every sandbox
#: mounts the root inside a user namespace; roots made before kept them in trusted.* (root mode)
OVERLAY_XATTRS = "user"
_TRUSTED, _USER = "trusted.overlay.", "user.overlay."
_FORBIDDEN_IN_PATHS = (":", ",", "\n")


@dataclasses.dataclass(frozen=True)
class RootPaths:
    """Every path of one root."""

    top: Path

    @property
    def base(self) -> Path:
        return self.top / "base"

    @property
    def layers(self) -> Path:
        return self.top / "layers"

    @property
    def upper(self) -> Path:
        return self.top / "upper"

    @property
    def work(self) -> Path:
        return self.top / "work"

    @property
    def mountpoint(self) -> Path:
        return self.top / "mnt"

    @property
    def state_file(self) -> Path:
        return self.top / "state.json"

    @property
    def lock_file(self) -> Path:
        return self.top.with_name(self.top.name + ".lock")

    @property
    def default_resultdir(self) -> Path:
        return self.top / "result"

    @property
    def failed_build(self) -> Path:
        """A failed build's kept upper and its record (--keep-failed)."""
        return self.top / "failed-build"

    def incoming_base(self) -> Path:
        """Where a bootstrap writes before the base is renamed into place."""
        return self.top / f"base.incoming-{os.getpid()}"


class LayerStore:
    """Reads and changes the layer stack of one root; callers hold the root lock."""

    def __init__(self, paths: RootPaths) -> None:
        for bad in _FORBIDDEN_IN_PATHS:
            if bad in str(paths.top):
                raise RootError(f"{paths.top}: a root path must not contain {bad!r} (overlayfs options)")
        self.paths = paths

    def state(self) -> dict[str, Any]:
        """state.json, or an empty state for a root that was never initialised."""
        try:
            data = json.loads(self.paths.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise RootError(f"{self.paths.state_file}: unreadable root state ({exc}); run --scrub=chroot") from None
        if not isinstance(data, dict):
            raise RootError(f"{self.paths.state_file}: unreadable root state; run --scrub=chroot")
        return data

    def write_state(self, state: dict[str, Any]) -> None:
        """Replace state.json atomically (temporary file, fsync, rename)."""
        state = {**state, "version": STATE_VERSION}
        write_atomic(self.paths.state_file, json.dumps(state, indent=2, sort_keys=True), durable=True)

    # -- the base's record: what it is and how fresh its package lists are -------------------

    def update_base_info(self, **fields: object) -> None:
        """Record facts about the base in state.json (``content_id``, ``lists_updated``)."""
        state = self.state()
        state["base"].update(fields)
        self.write_state(state)

    def base_info(self) -> dict[str, Any]:
        """The base's record (empty for a root never initialised)."""
        base = self.state().get("base", {})
        return base if isinstance(base, dict) else {}

    def base_content_id(self) -> str:
        """The base's content id (equal for every root restored from the same root cache)."""
        return str(self.base_info().get("content_id", ""))

    def lists_stamp(self) -> str:
        """When the base's package lists were fetched (they change only with a refresh of the base)."""
        base = self.base_info()
        return str(base.get("lists_updated", base.get("created", "")))

    def lists_updated_at(self, *, including_upper: bool) -> float:
        """When apt's lists were last fetched: in the base, or (``including_upper``) in the root's upper."""
        state = self.state()
        base = state.get("base", {})
        updated = float(base.get("lists_updated", base.get("created", 0.0)))
        if including_upper:
            updated = max(updated, float(state.get("upper", {}).get("apt_updated", 0.0)))
        return updated

    def record_upper_lists_update(self) -> None:
        """The root's upper got fresh package lists (an ``apt-get update`` in the root itself)."""
        state = self.state()
        state["upper"] = {**state.get("upper", {}), "apt_updated": time.time()}
        self.write_state(state)

    def package_state_above_base(self) -> list[str]:
        """The layers above the base (snapshots, the upper) that hold their own dpkg database.

        Upgrading the base under such a layer would leave its copy of dpkg's
        status naming versions whose files are gone. Paths are looked at with
        lstat, component by component: a link in a layer is never followed
        (it counts as holding state, to be safe).
        """
        return [name for name in (*self.state().get("layers", []), "upper")
                if dpkg_status.layer_touches_status(str(self.paths.upper if name == "upper"
                                                        else self.paths.layers / name))]

    def is_initialized(self) -> bool:
        """True once a base was completely created and recorded."""
        return self.paths.base.is_dir() and bool(self.state().get("base"))

    def remove_leftovers(self) -> None:
        """Delete half-made bases and temporary files of interrupted runs."""
        if not self.paths.top.is_dir():
            return
        for entry in self.paths.top.iterdir():
            if entry.name.startswith(("base.incoming-", "outbox-", UNIQUE_PREFIX,
                                       self.paths.state_file.name + TEMP_INFIX)):
                remove_tree(entry)
        scratch = self.paths.top / "scratch"
        if scratch.is_dir():
            # its contents only: the directory itself may be where a run's RAM is mounted
            for entry in scratch.iterdir():
                remove_tree(entry)

    def commit_base(self, incoming: Path, info: dict[str, Any]) -> None:
        """Move a finished base into place and record it; the root starts with an empty upper."""
        if self.paths.base.exists():
            remove_tree(self.paths.base)
        os.replace(incoming, self.paths.base)
        self.reset_upper()
        self.write_state({"base": {**info, "created": time.time()}, "layers": [], "overlay_xattrs": OVERLAY_XATTRS})

    def adopt_user_xattrs(self) -> bool:
        """Convert a root made before sandboxes ran in user namespaces, once: its overlay marks to user.*.

        Its files keep their owners (the sandbox maps them); only the
        opaque-directory and other marks overlayfs wrote as trusted.* xattrs
        must be copied to the user.* names it reads now. Returns True if the
        root was converted.
        """
        state = self.state()
        if not state or state.get("overlay_xattrs") == OVERLAY_XATTRS:
            return False
        for directory in (self.paths.upper, *(self.paths.layers / n for n in state.get("layers", []))):
            if directory.is_dir():
                copy_overlay_xattrs(directory)
        self.write_state({**self.state(), "overlay_xattrs": OVERLAY_XATTRS})
        return True

    def ensure_upper(self) -> None:
        """Create the upper and work directories if they are missing.

        A snapshot killed between renaming the upper and recording the layer
        left the upper under layers/ unrecorded: it is moved back, nothing lost.
        """
        if not self.paths.upper.exists() and self.paths.layers.is_dir():
            recorded = set(self.state().get("layers", []))
            orphans = [p for p in self.paths.layers.iterdir() if p.name not in recorded]
            if len(orphans) == 1:
                os.replace(orphans[0], self.paths.upper)
        self.paths.upper.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.paths.work.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.paths.mountpoint.mkdir(mode=0o755, parents=True, exist_ok=True)

    def reset_upper(self) -> None:
        """Discard every change made on top of the base and the snapshot layers."""
        for path in (self.paths.upper, self.paths.work):
            if path.exists():
                remove_tree(path)
        self.ensure_upper()

    def lower_dirs(self) -> tuple[str, ...]:
        """Lower layers for overlayfs, topmost first, the base last."""
        names = self.state().get("layers", [])
        return (*(str(self.paths.layers / n) for n in reversed(names)), str(self.paths.base))

    # -- snapshots: O(1) renames of directories, never copies ---------------------------

    def snapshots(self) -> list[dict[str, Any]]:
        """The snapshot layers, bottom first: name and creation time."""
        state = self.state()
        created = state.get("snapshots", {})
        return [{"name": n, "created": created.get(n)} for n in state.get("layers", [])]

    def upper_is_empty(self) -> bool:
        """True when nothing was changed since the last snapshot (or init)."""
        return not self.paths.upper.exists() or not any(self.paths.upper.iterdir())

    def snapshot(self, name: str) -> None:
        """Freeze the current upper into layer ``name``; a new, empty upper goes on top."""
        if not is_safe_name(name, max_length=64):
            raise UsageError(f"snapshot name '{name}': use letters, digits and . _ + - (at most 64)")
        state = self.state()
        layers = list(state.get("layers", []))
        if name in layers:
            raise UsageError(f"snapshot '{name}' exists already (--remove-snapshot it first)")
        self.ensure_upper()
        self.paths.layers.mkdir(exist_ok=True)
        os.replace(self.paths.upper, self.paths.layers / name)
        state["layers"] = [*layers, name]
        state["snapshots"] = {**state.get("snapshots", {}), name: time.time()}
        state["upper"] = {}
        self.write_state(state)
        remove_tree(self.paths.work)
        self.ensure_upper()

    def rollback(self, name: str) -> list[str]:
        """Drop every change above snapshot ``name``; returns the snapshots dropped with them."""
        state = self.state()
        layers = list(state.get("layers", []))
        if name not in layers:
            raise UsageError(f"no snapshot named '{name}' (known: {', '.join(layers) or 'none'})")
        dropped = layers[layers.index(name) + 1:]
        state["layers"] = layers[: layers.index(name) + 1]
        state["snapshots"] = {k: v for k, v in state.get("snapshots", {}).items() if k not in dropped}
        state["upper"] = {}
        self.write_state(state)
        for layer in dropped:
            remove_tree(self.paths.layers / layer)
        self.reset_upper()
        return dropped

    def remove_snapshot(self, name: str) -> None:
        """Delete snapshot ``name``; refused while a snapshot or the root's changes stand on it."""
        state = self.state()
        layers = list(state.get("layers", []))
        if name not in layers:
            raise UsageError(f"no snapshot named '{name}' (known: {', '.join(layers) or 'none'})")
        above = layers[layers.index(name) + 1:]
        if above:
            raise UsageError(f"snapshot '{name}' cannot be removed: {', '.join(above)} stand(s) on it "
                             f"(remove {above[-1]} first, or --rollback-to {name})")
        if not self.upper_is_empty():
            raise UsageError(f"snapshot '{name}' cannot be removed: the root's current changes stand on it "
                             f"(--rollback-to {name} or --clean discards them first)")
        state["layers"] = layers[:-1]
        state["snapshots"] = {k: v for k, v in state.get("snapshots", {}).items() if k != name}
        self.write_state(state)
        remove_tree(self.paths.layers / name)
        self.reset_upper()

    def drop_all_snapshots(self) -> None:
        """Back to the base: every snapshot and the upper go."""
        state = self.state()
        if state:
            state.update({"layers": [], "snapshots": {}, "upper": {}})
            self.write_state(state)
        if self.paths.layers.exists():
            remove_tree(self.paths.layers)
        self.reset_upper()

    def scratch_overlay(self, name: str, lowers: tuple[str, ...] | None = None) -> OverlayRoot:
        """A throw-away, empty upper over the base (a clean build's root), or over ``lowers``.

        It lives in ``scratch/NAME`` until :meth:`drop_scratch`; a killed run's
        scratch directories are removed by :meth:`remove_leftovers`.
        """
        top = self.paths.top / "scratch" / name
        if top.exists():
            remove_tree(top)
        make_spread_directory(top, 0o755)  # away from the trash's deletions (deb_mock.spread_dirs)
        (top / "upper").mkdir(mode=0o755)
        (top / "work").mkdir(mode=0o700)
        self.paths.mountpoint.mkdir(mode=0o755, parents=True, exist_ok=True)
        return OverlayRoot(lowers=lowers or (str(self.paths.base),), upper=str(top / "upper"),
                           work=str(top / "work"), mountpoint=str(self.paths.mountpoint))

    def scratch_upper(self, name: str) -> Path:
        """The upper directory of scratch overlay ``name``."""
        return self.paths.top / "scratch" / name / "upper"

    def keep_scratch(self, name: str, info: dict[str, Any]) -> None:
        """Keep scratch ``name`` as the failed build (a rename; any older one is dropped first)."""
        self.drop_failed_build()
        top = self.paths.top / "scratch" / name
        write_atomic(top / "failed-build.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
        os.replace(top, self.paths.failed_build)

    def failed_build_info(self) -> dict[str, Any] | None:
        """The kept failed build's record, or None."""
        try:
            info: dict[str, Any] = json.loads((self.paths.failed_build / "failed-build.json").read_text())
        except (OSError, ValueError):
            return None
        return info

    def failed_build_root(self) -> tuple[OverlayRoot, str]:
        """The kept failed build as a root, and its build directory (exit 5 if none is kept)."""
        info = self.failed_build_info()
        if info is None:
            raise UsageError(f"{self.paths.top.name} has no failed build kept",
                             hint="build with --keep-failed (or keep_failed: true) first")
        gone = [lower for lower in info["lowers"] if not Path(lower).is_dir()]
        if gone:
            raise RootError(f"the failed build's lower layers are gone ({', '.join(gone)})",
                            hint="a --scrub or a new base removed them; build again with --keep-failed")
        top = self.paths.failed_build
        self.paths.mountpoint.mkdir(mode=0o755, parents=True, exist_ok=True)
        return OverlayRoot(tuple(info["lowers"]), str(top / "upper"), str(top / "work"),
                           str(self.paths.mountpoint)), str(info["build_dir"])

    def drop_failed_build(self) -> None:
        if self.paths.failed_build.exists():
            remove_tree(self.paths.failed_build)

    def drop_scratch(self, name: str) -> None:
        """Delete a scratch upper."""
        remove_tree(self.paths.top / "scratch" / name)

    def overlay(self) -> OverlayRoot:
        """The overlay root of the current stack."""
        self.ensure_upper()
        return OverlayRoot(
            lowers=self.lower_dirs(),
            upper=str(self.paths.upper),
            work=str(self.paths.work),
            mountpoint=str(self.paths.mountpoint),
        )


def copy_overlay_xattrs(top: Path) -> int:
    """Give every entry below ``top`` with trusted.overlay.* xattrs the same user.overlay.* ones; returns how many.

    Entries are reached through their directory's descriptor and a link is
    never followed (a link's own xattrs are read and set).
    """
    changed = 0
    for _dirpath, dirnames, filenames, dir_fd in os.fwalk(top):
        for name in (".", *dirnames, *filenames):
            # /proc/self/fd/N is the directory itself (a magic link to follow); below it, nothing is followed
            path, follow = (f"/proc/self/fd/{dir_fd}", True) if name == "." else (f"/proc/self/fd/{dir_fd}/{name}",
                                                                                   False)
            try:
                keys = [k for k in os.listxattr(path, follow_symlinks=follow) if k.startswith(_TRUSTED)]
                for key in keys:
                    value = os.getxattr(path, key, follow_symlinks=follow)
                    os.setxattr(path, _USER + key[len(_TRUSTED):], value, follow_symlinks=follow)
                    changed += 1
            except OSError:
                continue
    return changed


def remove_tree(path: Path) -> None:
    """Delete a directory tree or file, clearing immutable flags ostree may have set."""
    if path.is_symlink() or path.is_file():
        path.unlink()
        return
    if not path.exists():
        return
    try:
        shutil.rmtree(path)
    except PermissionError:
        chattr = shutil.which("chattr")
        if chattr:
            import subprocess

            subprocess.run([chattr, "-R", "-i", str(path)], check=False, capture_output=True)
        shutil.rmtree(path)
