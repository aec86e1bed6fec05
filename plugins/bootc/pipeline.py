"""A finished root → image layer → tree → OSTree commit → OCI image or bootable disk.

Each stage is cached on a digest of its inputs (osbuild's lesson): re-imaging
an unchanged root redoes nothing, changing the disk size redoes only the disk,
and a package added to the root redoes the image and what follows it. Every
tool runs from the target release (the tools layer), inside deb-mock's
sandbox, with its inputs and outputs bind-mounted; Python here only moves
files in directories deb-mock owns.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from deb_mock.digests import file_digest
from deb_mock.errors import RootError
from deb_mock.layerstore import remove_tree
from deb_mock.sandbox.spec import Bind, DirectoryRoot, Mount, OverlayRoot, RootFs

from . import disk, formats, lint, stage_dirs, transforms
from .image_layers import LAYER_FORMAT, Layer, LayerCache, digest_of, newest_changelog, root_fingerprint
from .image_tree import DRACUT_OPTIONS, INITRAMFS_PACKAGES, TREE_FORMAT, ZSTD_INITRAMFS, Tree, TreeSource
from .initramfs import InitramfsCache
from .intree import InTree
from .settings import CLOUD_PACKAGES, DEFAULT_BOOT_PACKAGES, DEFAULT_VCPUS, PLUGIN_NAME, TOOL_PACKAGES, Settings
from .stage_dirs import StageDirs

if TYPE_CHECKING:
    from deb_mock.services import RootServices

#: where inputs and outputs of a tool run appear inside the tools sandbox
IN_TREE, IN_REPO, IN_WORK, IN_OUT = "/deb-mock/tree", "/deb-mock/repo", "/deb-mock/work", "/deb-mock/out"
#: the bootc directory itself, for the disk stage: its repository and work directory on one mount, so that
#: pull-local hard-links the repository's objects into the sysroot instead of copying them (EXDEV otherwise)
IN_TOP = "/deb-mock/bootc"
#: deb-mock's own repository, under the bootc directory
INTERNAL_REPO = "ostree"
DISK_FORMAT = 3  # 3: no GRUB serial commands on arm64; systemd's update stamps in the deployment
#: the tools layer plus skopeo, for --bootc-from and --bootc-container docker://
SKOPEO_PACKAGES = ("skopeo",)
SALT_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class Pipeline:
    """The stages of one bootc run on one root."""

    def __init__(self, root: RootServices) -> None:
        self.root = root
        self.settings: Settings = root.config.plugin(PLUGIN_NAME)
        self.top = root.paths.top / "bootc"
        self.arch = root.config.architecture
        self._image: Layer | None = None
        self._tools: Layer | None = None
        #: --bootc-from: the tree comes from a container image instead of the root
        self.source: TreeSource | None = None

    # -- helpers -------------------------------------------------------------------------

    @property
    def ref(self) -> str:
        return self.settings.ref or f"debian/{self.root.config.suite}/{self.arch}"

    @staticmethod
    def env(epoch: int) -> dict[str, str]:
        """Every tool sees UTC and C.UTF-8; those whose output lands in the image also a SOURCE_DATE_EPOCH."""
        env = {"TZ": "UTC", "LC_ALL": "C.UTF-8"}
        if epoch:
            env["SOURCE_DATE_EPOCH"] = str(epoch)
        return env

    def run_tool(self, argv: list[str], stage: str, mounts: list[Mount], epoch: int = 0,
                 root_fs: RootFs | None = None) -> list[str]:
        """Run a tool from the tools layer (a throw-away upper keeps the layer itself pristine)."""
        if root_fs is None:
            root_fs = self.root.new_scratch("bootc-tools", self.tools().stack())
        return self.root.checked_run(argv, stage, root_fs=root_fs, network=False, mounts=mounts,
                                     env=self.env(epoch), keep=2000)

    def cached(self, kind: str, key: str) -> tuple[Path, dict[str, object]] | None:
        """A finished stage result ``<bootc>/<kind>/<key>`` and its record, if caching is on."""
        stage = StageDirs(self.top, kind)
        info = stage.finished(key) if self.settings.cache else None
        return None if info is None else (stage.path(key), info)

    # -- stage 1: the image layer and the tools layer -------------------------------------------

    def image(self) -> Layer:
        """The root plus the boot packages and a fresh initramfs with ostree's dracut module."""
        if self._image is not None:
            return self._image
        root = self.root
        root.require_initialized()
        lowers = (str(root.paths.upper), *root.store.lower_dirs())
        boot = self.settings.boot_packages or DEFAULT_BOOT_PACKAGES.get(self.arch, ())
        if not boot:
            raise RootError(f"plugins.bootc.boot_packages: no default boot packages for {self.arch}; list them")
        packages = (*boot, *self.settings.packages, *INITRAMFS_PACKAGES,
                    *(CLOUD_PACKAGES if self.settings.cloud_init else ()))
        dracut = (*DRACUT_OPTIONS, *ZSTD_INITRAMFS)
        key = digest_of(LAYER_FORMAT, root_fingerprint(root), packages, self.settings.source_date_epoch, dracut)
        cache = LayerCache(root, "image")
        layer = cache.lookup(key, lowers) if self.settings.cache else None
        if layer is None:
            with root.logs.stage("bootc-image"):
                root.console.info(f"bootc: installing the boot packages into an image layer ({len(packages)})")
                layer = cache.fresh(key, lowers)
                cache.install(layer, packages, "bootc-image-apt")
                epoch = self.settings.source_date_epoch or newest_changelog(layer.stack())
                kvers = self._kernels(layer)
                if len(kvers) != 1:
                    raise RootError(f"bootc: the image must hold exactly one kernel, it has {kvers or 'none'}",
                                    hint="list one linux-image package in plugins.bootc.boot_packages")
                kver = kvers[0]
                self._initramfs(cache.overlay(layer), kver, dracut, epoch)
                layer = cache.finish(layer, {"key": key, "kver": kver, "epoch": epoch, "packages": list(packages)})
        self._image = layer
        return layer

    def _initramfs(self, image: OverlayRoot, kver: str, options: tuple[str, ...], epoch: int) -> None:
        """dracut's initramfs in the image layer being built, or the last one when dracut would make it again."""
        root = self.root
        initramfs = InitramfsCache(root, StageDirs(self.top, "initramfs"), self.env(epoch))
        with root.logs.stage("bootc-initramfs"):
            if self.settings.cache and initramfs.reuse(image, kver, options, epoch):
                root.console.info(f"bootc: the initramfs for {kver} again (nothing dracut reads has changed)")
                return
        root.console.info(f"bootc: dracut initramfs for {kver} (with ostree's module)")
        with root.logs.stage("bootc-dracut"):
            root.checked_run(["dracut", *options, "--kver", kver, f"/usr/lib/modules/{kver}/initramfs.img"],
                             "bootc-dracut", root_fs=image, network=False, env=self.env(epoch))
        with root.logs.stage("bootc-initramfs"):
            initramfs.remember(image, kver, options, epoch)

    @staticmethod
    def _kernels(layer: Layer) -> list[str]:
        """Kernel versions with modules anywhere in the layer's stack."""
        return sorted({kver for directory in layer.stack() for kver in transforms.kernel_versions(Path(directory))})

    def tools(self) -> Layer:
        """The target release's ostree, mkfs, mtools, GRUB and qemu-img, over the root's base.

        Over the base, not the image: a change to the root or the image's
        packages leaves the tools layer as it is.
        """
        if self._tools is not None:
            return self._tools
        packages = TOOL_PACKAGES.get(self.arch)
        if not packages:
            raise RootError(f"bootc: images for {self.arch} are not supported yet (amd64, arm64 are)")
        self.root.require_initialized()
        lowers = (str(self.root.paths.base),)
        base = self.root.store.state().get("base", {})
        key = digest_of(LAYER_FORMAT, base.get("content_id"), base.get("bootstrap_digest"), packages)
        cache = LayerCache(self.root, "tools")
        layer = cache.lookup(key, lowers) if self.settings.cache else None
        if layer is None:
            with self.root.logs.stage("bootc-tools"):
                self.root.console.info("bootc: installing the image tools of the target release")
                layer = cache.fresh(key, lowers)
                cache.install(layer, packages, "bootc-tools-apt")
                layer = cache.finish(layer, {"key": key})
        self._tools = layer
        return layer

    def skopeo_tools(self) -> Layer:
        """skopeo over the tools layer: only runs that read or push an image through it install it."""
        tools = self.tools()
        key = digest_of(LAYER_FORMAT, tools.info["key"], SKOPEO_PACKAGES)
        cache = LayerCache(self.root, "pull-tools")
        layer = cache.lookup(key, tools.stack()) if self.settings.cache else None
        if layer is None:
            with self.root.logs.stage("bootc-pull-tools"):
                self.root.console.info("bootc: installing skopeo over the image tools")
                layer = cache.fresh(key, tools.stack())
                cache.install(layer, SKOPEO_PACKAGES, "bootc-pull-tools-apt")
                layer = cache.finish(layer, {"key": key})
        return layer

    # -- stage 2: the tree ---------------------------------------------------------------------

    def tree(self) -> Tree:
        """The image as a plain directory, configured (users, hostname) and transformed for ostree."""
        if self.source is not None:
            return self.source.tree()
        image = self.image()
        settings = self.settings
        key = digest_of(TREE_FORMAT, image.info["key"], settings.hostname, settings.root_password, settings.lock_root,
                        [dataclasses.asdict(u) for u in settings.users], settings.cloud_init)
        kver, epoch = str(image.info["kver"]), int(image.info["epoch"])
        done = self.cached("tree", key)
        if done is not None:
            return Tree(done[0] / "root", key, kver, epoch, tuple(done[1].get("lint", ())))  # type: ignore[arg-type]
        with self.root.logs.stage("bootc-tree"):
            self.root.console.info("bootc: materialising and transforming the image tree")
            top = StageDirs(self.top, "tree").fresh(key)
            tree = top / "root"
            tree.mkdir(mode=0o755)
            scratch = self.root.new_scratch("bootc-copy", image.stack())
            self.root.checked_run(
                ["/bin/sh", "-c", 'tar --create --one-file-system --numeric-owner --acls --xattrs '
                 '--xattrs-include="*" --directory / --file - . | tar --extract --numeric-owner '
                 '--preserve-permissions --acls --xattrs --xattrs-include="*" --directory "$1" --file -',
                 "sh", IN_TREE], "bootc-tree", root_fs=scratch, network=False,
                mounts=[Bind(str(tree), IN_TREE, readonly=False)])
            self.root.discard_scratch("bootc-copy")
            try:
                with InTree(tree) as in_tree:
                    in_tree.remove("deb-mock")  # the empty mount point of the copy's own bind
                    self._configure(tree, in_tree, epoch)
                transforms.apply_all(tree, kver, epoch, cloud_init=settings.cloud_init)
            except OSError as exc:
                raise RootError(f"bootc: transforming the image tree failed: {exc}") from None
            findings = tuple(dataclasses.asdict(f) for f in lint.lint_tree(tree, self.arch))
            StageDirs(self.top, "tree").finish(top, {"key": key, "kver": kver, "epoch": epoch, "lint": findings})
        return Tree(tree, key, kver, epoch, findings)

    def _configure(self, tree: Path, image: InTree, epoch: int) -> None:
        """Hostname, root's password and the users, with the image's own shadow tools (in a chroot of the tree)."""
        settings = self.settings
        image.write_text("etc/hostname", settings.hostname + "\n")
        image.write_text("etc/hosts",
                         f"127.0.0.1\tlocalhost\n127.0.1.1\t{settings.hostname}\n::1\tlocalhost ip6-localhost\n")
        chroot = DirectoryRoot(str(tree), str(self.root.paths.mountpoint))

        def run(argv: list[str], env: dict[str, str] | None = None) -> list[str]:
            return self.root.checked_run(argv, "bootc-users", root_fs=chroot, network=False,
                                         env={**self.env(epoch), **(env or {})})

        for user in settings.users:
            argv = ["useradd", "--create-home", "--shell", user.shell]
            if user.uid is not None:
                argv += ["--uid", str(user.uid)]
            if user.groups:
                argv += ["--groups", ",".join(user.groups)]
            run([*argv, "--", user.name])
            if user.password:
                run(["usermod", "--password", self._hash(user.password, user.name, run), "--", user.name])
            if user.ssh_keys:
                self._authorized_keys(image, user.name, user.ssh_keys)
        if settings.root_password:
            run(["usermod", "--password", self._hash(settings.root_password, "root", run), "root"])
        if settings.lock_root:
            run(["usermod", "--lock", "root"])
        elif not settings.root_password:
            run(["passwd", "--delete", "root"])

    @staticmethod
    def _hash(password: str, name: str, run: Callable[[list[str], dict[str, str]], list[str]]) -> str:
        """A crypt(3) SHA-512 hash whose salt derives from the user and password (not from the root).

        A random salt would make every image different; one derived from the
        root would make root and rootless images of the same packages differ.
        """
        if password.startswith("hashed:"):
            return password.removeprefix("hashed:")
        seed = hashlib.sha256(f"deb-mock\0{name}\0{password}".encode()).digest()
        salt = "".join(SALT_ALPHABET[b % 64] for b in seed[:16])
        lines = run(["perl", "-e", "print crypt($ENV{DEB_MOCK_PASSWORD}, $ARGV[0]), qq(\\n)", f"$6${salt}$"],
                    {"DEB_MOCK_PASSWORD": password})
        hashed = lines[-1].strip() if lines else ""
        if not hashed.startswith("$6$"):
            raise RootError(f"bootc: hashing the password of {name} failed (crypt gave '{hashed[:8]}…')")
        return hashed

    @staticmethod
    def _authorized_keys(image: InTree, name: str, keys: tuple[str, ...]) -> None:
        """~/.ssh/authorized_keys of ``name``, in the home its passwd entry names (resolved in the image)."""
        entry = transforms.passwd_entry(Path(image.top), name)
        if entry is None:
            raise RootError(f"bootc: user {name} was not created")
        uid, gid, home = int(entry[2]), int(entry[3]), entry[5].lstrip("/")
        ssh, keys_file = f"{home}/.ssh", f"{home}/.ssh/authorized_keys"
        image.mkdir(ssh, 0o700)
        image.write_text(keys_file, "".join(k.strip() + "\n" for k in keys), 0o600)
        for path in (ssh, keys_file):
            image.chown(path, uid, gid)

    # -- stage 3: the commit -------------------------------------------------------------------

    def commit(self, repo: Path) -> str:
        """Commit the image to ``ref`` in ``repo`` (an archive repo, made if missing); return the checksum.

        The tree is committed once, into deb-mock's own repository (cached on
        the tree's inputs). Another repository gets that very commit when its
        ref is new; otherwise a commit of the same content on top of its ref
        (objects pulled, nothing hashed again), so repeated commits form the
        ref's history: updates. If the ref already holds this content, it is
        the answer and nothing is written. Nothing about the run (root name,
        cache keys) goes into a commit: the same packages give the same id.
        """
        internal = self.internal_repo
        first = self._internal_commit()
        if repo == internal:
            return first
        mounts: list[Mount] = [Bind(str(repo), IN_REPO, readonly=False), Bind(str(internal), IN_WORK)]
        if not (repo / "config").is_file():
            repo.mkdir(parents=True, exist_ok=True)
            self.run_tool(["ostree", f"--repo={IN_REPO}", "init", "--mode=archive"], "bootc-commit", mounts)
        head = self._rev_parse(repo)
        wanted = self._content(IN_WORK, first, mounts)
        if head and self.settings.cache and self._content(IN_REPO, head, mounts) == wanted:
            self.root.console.info(f"bootc: {self.ref} already holds this tree: commit {head}")
            return head
        tree = self.tree()
        with self.root.logs.stage("bootc-commit"):
            self.root.console.info(f"bootc: committing to {self.ref} in {repo}")
            self.run_tool(["ostree", f"--repo={IN_REPO}", "pull-local", IN_WORK, first], "bootc-commit", mounts)
            if head is None:  # a new ref: the very same commit as deb-mock's own
                self.run_tool(["ostree", f"--repo={IN_REPO}", "refs", f"--create={self.ref}", first],
                              "bootc-commit", mounts)
                return first
            return self._ostree_commit(f"--tree=ref={first}", mounts, tree)

    def _internal_commit(self) -> str:
        """The tree's commit in deb-mock's own repository, made once per tree (commits.json remembers)."""
        tree = self.tree()
        internal = self.internal_repo
        index_path = self.top / "commits.json"
        index: dict[str, str] = json.loads(index_path.read_text()) if index_path.is_file() else {}
        known = index.get(tree.key)
        if known and self.settings.cache and (internal / "objects" / known[:2] / f"{known[2:]}.commit").is_file():
            return known
        mounts: list[Mount] = [Bind(str(internal), IN_REPO, readonly=False)]
        if not (internal / "config").is_file():
            if (self.top / "repo").is_dir():  # the archive repository earlier versions kept: a cache, replaced
                stage_dirs.discard(self.top / "repo", self.top)
            internal.mkdir(parents=True, exist_ok=True)
            self.run_tool(["ostree", f"--repo={IN_REPO}", "init", "--mode=bare"], "bootc-commit", mounts)
        with self.root.logs.stage("bootc-commit"):
            self.root.console.info(f"bootc: committing the tree to {self.ref}")
            # no parent: deb-mock's repository is a cache, and its history must not change the commit id
            checksum = self._ostree_commit(f"--tree=dir={IN_TREE}", [*mounts, Bind(str(tree.path), IN_TREE)], tree,
                                           "--parent=none")
            # the ref's earlier commit is unreachable now: its objects go (only what the change replaced)
            self.run_tool(["ostree", f"--repo={IN_REPO}", "prune", "--refs-only", "--depth=0"], "bootc-commit",
                          mounts)
        index[tree.key] = checksum
        tmp = index_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(index, sort_keys=True))
        os.replace(tmp, index_path)
        return checksum

    def _ostree_commit(self, source: str, mounts: list[Mount], tree: Tree, *extra: str) -> str:
        lines = self.run_tool(
            ["ostree", f"--repo={IN_REPO}", "commit", f"--branch={self.ref}", source, "--bootable", *extra,
             f"--subject=deb-mock {self.root.config.name}",
             f"--add-metadata-string=version={self.root.config.suite}.{tree.epoch}"],
            "bootc-commit", mounts, tree.epoch)
        checksum = lines[-1].strip() if lines else ""
        if not re.fullmatch(r"[0-9a-f]{64}", checksum):
            raise RootError(f"bootc: ostree commit printed no checksum (last line: '{checksum}')")
        return checksum

    def _rev_parse(self, repo: Path) -> str | None:
        ref_file = repo / "refs" / "heads" / self.ref
        return ref_file.read_text().strip() if ref_file.is_file() else None

    def _content(self, repo: str, checksum: str, mounts: list[Mount]) -> str | None:
        """A commit's content checksum (its tree, whatever its parent and time); None if it cannot be read."""
        try:
            lines = self.run_tool(["ostree", f"--repo={repo}", "show", checksum], "bootc-commit", mounts)
        except RootError:
            return None
        return next((line.split()[-1] for line in lines if line.startswith("ContentChecksum:")), None)

    @property
    def internal_repo(self) -> Path:
        """deb-mock's own repository of the root's commits, the source of every later stage.

        bare, not archive: an archive repository zlib-compresses every file
        of every commit (25 of the 28 s a commit of a default image takes
        here, again after a one-package change, since ostree compresses
        before it finds the object present); bare only hashes and copies. And
        the disk stage's sysroot, bare too, takes its objects as hard links
        (pull-local: 0.9 s instead of a 683 MB copy). The commit ids are the
        same in any mode. An archive repository the user names
        (--bootc-commit) compresses only the objects it lacks. Files keep
        their owners as the tools' sandbox maps them, as the tree's do.
        """
        return self.top / INTERNAL_REPO

    def internal_commit(self) -> str:
        """The commit in deb-mock's own repository (for images made without --bootc-commit)."""
        return self.commit(self.internal_repo)

    # -- stage 4a: the disk image ---------------------------------------------------------------

    def disk_raw(self, checksum: str) -> tuple[Path, dict[str, object]]:
        """The raw disk of ``checksum`` (cached on the commit and the disk settings)."""
        settings = self.settings
        tools = self.tools()
        key = digest_of(DISK_FORMAT, checksum, tools.info["key"], settings.disk_size, settings.esp_size,
                        settings.kernel_args_for(self.arch), settings.os_name, settings.remote, settings.update_url,
                        settings.gpg_verify, self.ref, self.arch)
        done = self.cached("disk", key)
        if done is not None:
            return done[0] / "disk.raw", done[1]
        with self.root.logs.stage("bootc-disk"):
            self.root.console.info("bootc: deploying the commit and writing the disk image")
            work = StageDirs(self.top, "disk").fresh(key)
            ids = disk.DiskIds.derive(f"{checksum}/{key}")
            epoch = self.tree().epoch
            mounts: list[Mount] = [Bind(str(self.top), IN_TOP, readonly=False)]
            tool_root = self.root.new_scratch("bootc-tools", tools.stack())

            def run(argv: list[str], stage: str = "bootc-disk") -> list[str]:
                return self.run_tool(argv, stage, mounts, epoch, root_fs=tool_root)

            inside = f"{IN_TOP}/{work.relative_to(self.top)}"
            self._deploy(run, work, inside, checksum, ids)
            needed = transforms.tree_size(work / "sysroot")
            geometry = disk.Geometry.plan(settings.disk_size, settings.esp_size, needed)
            raw = self._partitions(run, work, inside, geometry, ids)
            stage_dirs.discard(work / "sysroot", self.top)
            self.root.discard_scratch("bootc-tools")
            info: dict[str, object] = {
                "key": key, "commit": checksum, "disk_size": geometry.total, "deployment_size": needed,
                "root_fs_uuid": ids.root_fs, "esp_volume_id": ids.esp_volume, "raw_sha256": file_digest(raw),
            }
            StageDirs(self.top, "disk").finish(work, info)
        return raw, info

    def _partitions(self, run: Callable[..., list[str]], work: Path, inside: str, geometry: disk.Geometry,
                    ids: disk.DiskIds) -> Path:
        """disk.raw: the GPT, the ESP with the standalone GRUB, the deployed sysroot's ext4 (``inside`` is ``work``
        as the tools see it)."""
        syslinux = (work / "sysroot/boot/loader/syslinux.cfg").read_text()
        efi_target, efi_name = disk.EFI_BINARY[self.arch]
        (work / "grub.cfg").write_text(disk.grub_stub(ids, disk.syslinux_root_for(syslinux), self.arch))
        run(["grub-mkstandalone", "-O", efi_target, f"--modules={disk.GRUB_MODULES}",
             "--locales=", "--themes=", "--fonts=", "-o", f"{inside}/{efi_name}",
             f"boot/grub/grub.cfg={inside}/grub.cfg"])
        run(["mkfs.fat", "-F", "32", "-n", "ESP", "-i", ids.esp_volume, "-C", f"{inside}/esp.img",
             str(geometry.esp // 1024)])
        run(["mmd", "-i", f"{inside}/esp.img", "::/EFI", "::/EFI/BOOT"])
        run(["mcopy", "-i", f"{inside}/esp.img", f"{inside}/{efi_name}", f"::/EFI/BOOT/{efi_name}"])
        raw = work / "disk.raw"
        with raw.open("wb") as handle:
            handle.truncate(geometry.total)
        (work / "gpt.sfdisk").write_text(disk.sfdisk_script(geometry, ids, self.arch))
        run(["/bin/sh", "-c", 'sfdisk --quiet --no-reread --no-tell-kernel "$1" < "$2"', "sh",
             f"{inside}/disk.raw", f"{inside}/gpt.sfdisk"])
        run(["dd", f"if={inside}/esp.img", f"of={inside}/disk.raw", "bs=1M",
             f"seek={geometry.esp_start // disk.MIB}", "conv=notrunc,sparse", "status=none"])
        # the root file system written in place, at its partition's offset (the same bytes as a separate
        # image copied in with dd, without the copy: dd spent 6 s scanning 3.5 GB of it for holes)
        run(["mkfs.ext4", "-q", "-F", "-L", "root", "-U", ids.root_fs,
             "-E", f"hash_seed={ids.root_fs},offset={geometry.root_start},nodiscard",
             "-d", f"{inside}/sysroot", f"{inside}/disk.raw", str(geometry.root // 1024)])
        for leftover in ("esp.img", efi_name):
            remove_tree(work / leftover)
        return raw

    def _deploy(self, run: Callable[..., list[str]], work: Path, inside: str, checksum: str,
                ids: disk.DiskIds) -> None:
        """An ostree sysroot with the commit deployed from ``REMOTE:REF``, ready for `ostree admin upgrade`.

        Its objects are hard links to those of deb-mock's repository (both bare, on one mount): nothing is
        copied, and discarding the sysroot afterwards frees no data blocks.
        """
        settings = self.settings
        sysroot = f"{inside}/sysroot"
        (work / "sysroot").mkdir()
        repo = f"--repo={sysroot}/ostree/repo"
        run(["ostree", "admin", "init-fs", "--modern", sysroot])
        run(["ostree", "admin", "os-init", f"--sysroot={sysroot}", settings.os_name])
        run(["ostree", repo, "config", "set", "sysroot.bootloader", "syslinux"])
        run(["ostree", repo, "remote", "add", f"--set=gpg-verify={'true' if settings.gpg_verify else 'false'}",
             settings.remote, settings.update_url, self.ref])
        run(["ostree", repo, "pull-local", f"{IN_TOP}/{INTERNAL_REPO}", checksum])
        run(["ostree", repo, "refs", f"--create={settings.remote}:{self.ref}", checksum])
        boot = work / "sysroot/boot"
        (boot / "loader.0").mkdir(parents=True, exist_ok=True)
        (boot / "loader.0/syslinux.cfg").write_text(disk.SYSLINUX_SEED)
        (boot / "loader").symlink_to("loader.0")
        (boot / "syslinux").mkdir(exist_ok=True)
        (boot / "syslinux/syslinux.cfg").symlink_to("../loader/syslinux.cfg")
        kargs = [f"--karg={arg}" for arg in disk.kernel_args(settings.kernel_args_for(self.arch), ids)]
        run(["ostree", "admin", "deploy", f"--sysroot={sysroot}", f"--os={settings.os_name}", *kargs,
             f"{settings.remote}:{self.ref}"])
        # systemd's update stamps, which `ostree admin deploy` leaves out of /etc: without them the first
        # boot runs ldconfig and systemd-update-done on its critical chain (4.5 s under TCG) to rebuild
        # what the image already holds. Written in the sandbox: the deployment is the root's content.
        run(["/bin/sh", "-c", disk.UPDATE_STAMPS, "sh", f"{sysroot}/ostree/deploy/{settings.os_name}"])

    def write_disk(self, out: Path, checksum: str) -> dict[str, object]:
        """The disk image at ``out`` in the format its extension names, written atomically."""
        fmt = formats.format_for(out)
        raw, info = self.disk_raw(checksum)
        tmp_name = f".{out.name}.tmp-{os.getpid()}"
        stage = self.top / "package"
        mounts: list[Mount] = [Bind(str(raw.parent), IN_WORK), Bind(str(out.parent), IN_OUT, readonly=False),
                               Bind(str(stage), IN_TREE, readonly=False)]
        epoch = self.tree().epoch
        with self.root.logs.stage("bootc-convert"):
            try:
                if stage.exists():
                    remove_tree(stage)
                stage.mkdir()
                if fmt.package == "gce":
                    self.run_tool(formats.gce_command(IN_WORK, f"{IN_OUT}/{tmp_name}", epoch), "bootc-convert",
                                  mounts)
                elif fmt.package == "ova":
                    self.run_tool(formats.qemu_convert(fmt, f"{IN_WORK}/disk.raw", f"{IN_TREE}/disk.vmdk"),
                                  "bootc-convert", mounts)
                    formats.write_ova_descriptor(stage, name=out.name.removesuffix(".ova"),
                                                 capacity=raw.stat().st_size,
                                                 cpus=self.settings.qemu_cpus or DEFAULT_VCPUS,
                                                 memory_mib=int(self.settings.qemu_memory))
                    self.run_tool(formats.ova_command(IN_TREE, f"{IN_OUT}/{tmp_name}", epoch), "bootc-convert",
                                  mounts)
                else:
                    self.run_tool(formats.qemu_convert(fmt, f"{IN_WORK}/disk.raw", f"{IN_OUT}/{tmp_name}"),
                                  "bootc-convert", mounts)
                os.replace(out.parent / tmp_name, out)
            finally:
                (out.parent / tmp_name).unlink(missing_ok=True)
                if stage.exists():
                    remove_tree(stage)
                self.root.discard_scratch("bootc-tools")
        return {**info, "format": fmt.name}
