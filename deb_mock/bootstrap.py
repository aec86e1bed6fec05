"""Create a root's base tree with mmdebstrap, then prepare it for deb-mock.

The mmdebstrap command line is a pure function of the config (tested by
equality); no mirror is ever written here: without ``mirror`` mmdebstrap
uses its default, and the host's proxy settings come from ``apt_proxy``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from deb_mock import userns
from deb_mock.config import Config
from deb_mock.digests import sha256
from deb_mock.errors import RootError

#: apt settings written into every root (and given to mmdebstrap)
APT_CONF_NAME = "90deb-mock"


def apt_options(config: Config) -> list[str]:
    """apt configuration lines shared by the bootstrap and the root's apt.conf.d.

    Not the proxy: it belongs to the builder, not to the base (builders behind
    different proxies share root caches). The bootstrap gets it as an option,
    every later apt run as ``http_proxy`` in its environment
    (RootServices.sandbox_spec), and the base keeps no copy.
    """
    return [
        'APT::Install-Recommends "false"',
        'Acquire::Languages "none"',
        'Dpkg::Use-Pty "false"',
    ]


#: the apt option that carries ``apt_proxy`` into the bootstrap (and is taken out of the base after it)
PROXY_OPTION = "Acquire::http::Proxy"


#: bump when what init does to a fresh base changes (it invalidates root caches)
PREPARE_VERSION = 1
#: the config keys that shape a bootstrapped base; a root cache is keyed by their digest
BOOTSTRAP_KEYS = ("suite", "architecture", "variant", "components", "mirror", "apt_options",
                  "packages", "deb_src", "extra_sources", "keyrings", "build_user", "build_uid")


def bootstrap_digest(config: Config) -> str:
    """Digest of every config value that shapes the base: a changed value means another cache."""
    values = {key: getattr(config, key) for key in BOOTSTRAP_KEYS}
    values["prepare_version"] = PREPARE_VERSION
    return sha256(json.dumps(values, sort_keys=True, default=list).encode()).hexdigest()


def mmdebstrap_command(config: Config, target: Path, extra: Sequence[str] = ()) -> list[str]:
    """The mmdebstrap argument list that bootstraps ``config`` into ``target``."""
    argv = [
        "mmdebstrap",
        "--mode=root",
        f"--variant={config.variant}",
        f"--architectures={config.architecture}",
        f"--components={','.join(config.components)}",
        "--skip=cleanup/apt/lists",
    ]
    if userns.in_user_namespace():
        # rootless: a sysfs cannot be mounted from a user namespace sharing the host's network
        argv.append("--skip=chroot/mount/sys")
    if config.packages:
        argv.append(f"--include={','.join(config.packages)}")
    argv += [f"--keyring={keyring}" for keyring in config.keyrings]
    if config.apt_proxy:
        argv.append(f'--aptopt={PROXY_OPTION} "{config.apt_proxy}"')
    for option in config.apt_options:
        key, _, value = option.partition("=")
        argv.append(f'--aptopt={key} "{value}"')
    argv += list(extra)
    argv += [config.suite, str(target)]
    if config.mirror:
        argv.append(config.mirror)
    return argv


#: mmdebstrap's own hook that runs dpkg and apt under eatmydata while the base is written
EATMYDATA_HOOKS = Path("/usr/share/mmdebstrap/hooks/eatmydata")


def unsafe_io_args(config: Config, hooks: Path = EATMYDATA_HOOKS) -> list[str]:
    """mmdebstrap's eatmydata hook when ``bootstrap_unsafe_io`` is on and this mmdebstrap has it.

    A base is not a root until it is complete (an interrupted bootstrap is
    discarded), so the fsyncs of dpkg and apt while writing it buy nothing
    (the README's benchmarks say how much they cost). The hook fetches
    eatmydata for the target and removes it again, so the tree is the same.
    It needs the network, so an offline bootstrap goes without it.
    """
    if not config.bootstrap_unsafe_io or config.offline or not hooks.is_dir():
        return []
    return [f"--hook-dir={hooks}"]


def source_lines_for_deb_src(sources_list: str) -> list[str]:
    """``deb-src`` twins of every one-line ``deb`` entry."""
    lines = []
    for line in sources_list.splitlines():
        stripped = line.strip()
        if stripped.startswith("deb "):
            lines.append("deb-src " + stripped[4:])
    return lines


def deb822_with_sources(text: str) -> str:
    """A deb822 sources file whose every stanza also has ``deb-src`` in Types."""
    from debian.deb822 import Deb822  # imported where used: a warm run must start fast

    stanzas = []
    for paragraph in Deb822.iter_paragraphs(text.splitlines(keepends=True)):
        types = paragraph.get("Types", "").split()
        if "deb" in types and "deb-src" not in types:
            paragraph["Types"] = " ".join([*types, "deb-src"])
        stanzas.append(paragraph.dump())
    return "\n".join(stanzas)


def write_in_tree(tree: Path, relative: str, content: str, mode: int = 0o644) -> None:
    """Write a file into a base tree that is not yet a root, refusing symlinked paths.

    The base is fresh from mmdebstrap, but a symlink in it must never redirect
    a write to the host.
    """
    path = tree
    for part in Path(relative).parts[:-1]:
        path = path / part
        if path.is_symlink():
            raise RootError(f"{tree}: refusing to write {relative}: {path} is a symlink")
        path.mkdir(exist_ok=True)
    final = path / Path(relative).name
    if final.is_symlink():
        raise RootError(f"{tree}: refusing to write {relative}: it is a symlink")
    fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), mode)
        handle.write(content)


def drop_proxy_in_tree(tree: Path, relative: str) -> None:
    """Take the proxy line out of a fresh base's apt configuration (it may hold credentials, and the base
    is shared with builders behind other proxies); never through a link."""
    try:
        fd = os.open(tree / relative, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise RootError(f"{tree}: refusing to change {relative}: {exc.strerror}") from None
    with os.fdopen(fd, encoding="utf-8") as handle:
        lines = handle.read().splitlines(keepends=True)
    write_in_tree(tree, relative, "".join(line for line in lines if PROXY_OPTION not in line))


def configure_sources(tree: Path, config: Config) -> None:
    """Add deb-src entries (``deb_src``) and ``extra_sources`` to a fresh base."""
    apt_dir = tree / "etc" / "apt"
    if config.deb_src:
        one_line = apt_dir / "sources.list"
        if one_line.is_file() and not one_line.is_symlink():
            src = source_lines_for_deb_src(one_line.read_text(encoding="utf-8"))
            if src:
                write_in_tree(tree, "etc/apt/sources.list.d/deb-mock-src.list", "\n".join(src) + "\n")
        parts = apt_dir / "sources.list.d"
        if any(p.is_symlink() for p in (tree / "etc", apt_dir, parts)):
            raise RootError(f"{tree}: refusing to edit apt sources: a directory on the way is a symlink")
        for sources in sorted(parts.glob("*.sources")):
            if not sources.is_symlink():
                relative = str(sources.relative_to(tree))
                write_in_tree(tree, relative, deb822_with_sources(sources.read_text(encoding="utf-8")))
    # proxy settings and sources may hold credentials: apt reads them as root, the build user must not
    if config.extra_sources:
        text = "\n".join(config.extra_sources) + "\n"
        write_in_tree(tree, "etc/apt/sources.list.d/deb-mock-extra.list", text, 0o600 if "@" in text else 0o644)
    write_in_tree(tree, f"etc/apt/apt.conf.d/{APT_CONF_NAME}", "".join(f"{o};\n" for o in apt_options(config)))
    if config.apt_proxy:
        drop_proxy_in_tree(tree, "etc/apt/apt.conf.d/99mmdebstrap")  # mmdebstrap's copy of --aptopt
