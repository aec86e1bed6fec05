"""Package builds: command lines (pure functions) and the options that shape them.

The way Debian's buildds build: unpacked in ``/build/reproducible-path/``, as an
unprivileged user, without network, with dpkg-buildpackage deriving
SOURCE_DATE_EPOCH from the changelog. These builders are tested by equality;
:mod:`deb_mock.builder` runs them in the sandbox.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from deb_mock.sandbox.spec import DEFAULT_PATH, RUN_DIR
from deb_mock.source import SourcePackage

#: where sources are unpacked (the path Debian's buildds use, so builds reproduce theirs)
BUILD_TOP = "/build/reproducible-path"
#: where the .dsc and its files appear inside the root during a build
SOURCE_MOUNT = f"{RUN_DIR}/src"
#: where the result directory appears inside the root while results are copied out
RESULT_MOUNT = f"{RUN_DIR}/out"
#: local repository of --extra-package and --chain results, inside the build's root
EXTRA_REPO = "/var/lib/deb-mock-extra"
EXTRA_LIST = "/etc/apt/sources.list.d/deb-mock-extra.list"
#: packages every build needs besides its Build-Depends (as sbuild installs them)
CORE_BUILD_PACKAGES = ("build-essential", "fakeroot")

BuildSelection = Literal["any", "all", "any,all"]


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    """What a rebuild builds and how (from the command line or the API)."""

    #: "any,all" (default, as sbuild), "any" (--arch-any) or "all" (--arch-all)
    arch: BuildSelection = "any,all"
    #: also build the source package (its .dsc and tarballs go into the .changes)
    source: bool = False
    #: also write a source-only .changes (for uploads), as sbuild's --source-only-changes
    source_only_changes: bool = False
    nocheck: bool = False
    jobs: int | None = None
    profiles: tuple[str, ...] = ()
    #: local .deb files or directories of them, offered to the dependency resolver
    extra_packages: tuple[Path, ...] = ()
    #: packages installed besides the build dependencies
    additional_packages: tuple[str, ...] = ()
    #: build on top of the root's current state instead of a clean one (-n)
    no_clean: bool = False
    enable_network: bool = False
    #: install the built packages into the root afterwards
    postinstall: bool = False
    #: seconds dpkg-buildpackage may run (--build-timeout); None: the config's build_timeout
    timeout: float | None = None
    #: (stage, command) pairs from the command line, run after the config's (sbuild's --*-commands)
    stage_commands: tuple[tuple[str, str], ...] = ()
    #: a pbuilder hook directory (--hookdir); None: the config's hooks.hookdir
    hookdir: Path | None = None
    #: keep a failed build's root (--keep-failed); None: the config's keep_failed
    keep_failed: bool | None = None
    #: checks of the results (--run-autopkgtest, --run-piuparts and their -fail); None: the config's
    run_autopkgtest: bool | None = None
    autopkgtest_opts: tuple[str, ...] | None = None
    autopkgtest_fail: bool | None = None
    run_piuparts: bool | None = None
    piuparts_fail: bool | None = None
    #: a binNMU: its number (``+bN``) and changelog message (--binNMU, --make-binNMU), as sbuild makes one
    binnmu: int | None = None
    binnmu_message: str | None = None
    #: the binNMU entry's date: seconds since the epoch or an RFC 5322 date (default: now)
    binnmu_timestamp: str | None = None
    #: a suffix for the binaries' version (--append-to-version), in a binary-only changelog entry
    append_to_version: str | None = None
    #: Maintainer and Changed-By of the .changes (dpkg-genchanges -m/-e); the binNMU entry's author
    maintainer: str | None = None
    uploader: str | None = None
    #: more dpkg-buildpackage options (--debbuildopts, --debbuildopt) and dpkg-source options for source builds
    debbuildopts: tuple[str, ...] = ()
    dpkg_source_opts: tuple[str, ...] = ()
    #: sign the .changes (with its .buildinfo and .dsc) with this key after the build (-k); "" never signs
    #: (--no-sign); None: the config's key_id
    keyid: str | None = None
    #: cross-build for this Debian architecture (--host) on the root's own one, no emulation
    host_arch: str | None = None
    #: let apt choose among a build dependency's alternatives (apt-get build-dep) instead of the first one
    resolve_alternatives: bool | None = None
    #: who installs the build dependencies: "apt" (apt-get satisfy) or "aptitude" (its resolver, in the build's
    #: layer); None: the config's build_dep_resolver
    build_dep_resolver: str | None = None
    #: dist-upgrade the base first when its lists hold newer packages (sbuild's apt_distupgrade); None: the config's
    apt_distupgrade: bool | None = None
    #: apt sources (one-line or deb822) and key files for this build only (--extra-repository[-key])
    extra_repositories: tuple[str, ...] = ()
    extra_repository_keys: tuple[Path, ...] = ()

    @property
    def all_profiles(self) -> tuple[str, ...]:
        """Build profiles, with ``nocheck`` added by --nocheck (as Debian policy asks)."""
        if self.nocheck and "nocheck" not in self.profiles:
            return (*self.profiles, "nocheck")
        return self.profiles


def deb_build_options(options: BuildOptions) -> str:
    """DEB_BUILD_OPTIONS from the flags."""
    words = []
    if options.nocheck:
        words.append("nocheck")
    if options.jobs:
        words.append(f"parallel={options.jobs}")
    return " ".join(words)


def build_environment(options: BuildOptions, build_user: str) -> dict[str, str]:
    """The environment of dpkg-buildpackage: a sane locale, a HOME that is not the host's.

    SOURCE_DATE_EPOCH is left to dpkg-buildpackage, which takes it from the
    changelog exactly as on Debian's buildds.
    """
    env = {
        "PATH": DEFAULT_PATH,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": "/sbuild-nonexistent",
        "USER": build_user,
        "LOGNAME": build_user,
        "SHELL": "/bin/sh",
    }
    if deb_build_options(options):
        env["DEB_BUILD_OPTIONS"] = deb_build_options(options)
    if options.all_profiles:
        env["DEB_BUILD_PROFILES"] = " ".join(options.all_profiles)
    return env


def build_targets(options: BuildOptions) -> str:
    """dpkg-buildpackage's --build value."""
    return f"source,{options.arch}" if options.source else options.arch


def dpkg_buildpackage_command(options: BuildOptions) -> list[str]:
    """The dpkg-buildpackage command line (unsigned, like sbuild's default)."""
    argv = ["dpkg-buildpackage", "-us", "-uc", f"--build={build_targets(options)}"]
    if options.all_profiles:
        argv.append(f"--build-profiles={','.join(options.all_profiles)}")
    if options.jobs:
        argv.append(f"-j{options.jobs}")
    if options.host_arch:
        argv.append(f"--host-arch={options.host_arch}")
    if options.maintainer:
        argv.append(f"-m{options.maintainer}")
    if options.uploader:
        argv.append(f"-e{options.uploader}")
    if options.source:
        argv += [f"--source-option={option}" for option in options.dpkg_source_opts]
    return [*argv, *options.debbuildopts]


def changes_binary_version(options: BuildOptions) -> bool:
    """Whether the build adds a binary-only changelog entry (a binNMU or a version suffix)."""
    return options.binnmu is not None or bool(options.append_to_version)


def binary_version(version: str, options: BuildOptions) -> str:
    """The binaries' version: sbuild's ``VERSION[SUFFIX][+bN]``."""
    suffix = options.append_to_version or ""
    return f"{version}{suffix}" + (f"+b{options.binnmu}" if options.binnmu is not None else "")


def binnmu_date(options: BuildOptions, now: float) -> str:
    """The entry's date as ``date -R`` writes it, in UTC (sbuild's rule for --binNMU-timestamp)."""
    stamp = options.binnmu_timestamp
    if stamp and not stamp.lstrip("+").isdigit():
        return stamp
    moment = int(stamp.lstrip("+")) if stamp else int(now)
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(moment))


def binary_only_entry(source: SourcePackage, options: BuildOptions, host_arch: str, distribution: str,
                      now: float) -> str:
    """The changelog entry sbuild prepends for a binNMU or a version suffix, byte for byte."""
    lines = [f"{source.name} ({binary_version(source.version, options)}) {distribution}; "
             "urgency=low, binary-only=yes", ""]
    if options.append_to_version:
        lines.append(f"  * Append {options.append_to_version} to version number; no source changes")
    if options.binnmu is not None:
        lines.append(f"  * Binary-only non-maintainer upload for {host_arch}; no source changes.")
        lines.append("  * " + "    ".join((options.binnmu_message or "").split("\n")))
    author = options.maintainer or options.uploader
    lines += ["", f" -- {author}  {binnmu_date(options, now)}", "", ""]
    return "\n".join(lines)


def prepend_changelog_command(build_dir: str, entry: str) -> list[str]:
    """Put ``entry`` on top of debian/changelog in the unpacked source (run as the build user)."""
    script = ('set -e; cd "$1"; { printf %s "$2"; cat debian/changelog; } > debian/changelog.deb-mock; '
              "mv debian/changelog.deb-mock debian/changelog")
    return ["/bin/sh", "-c", script, "sh", build_dir, entry]


def source_only_changes_command(source: SourcePackage, options: BuildOptions) -> list[str]:
    """dpkg-genchanges for an extra source-only .changes (run in the unpacked tree)."""
    target = f"../{source.name}_{source.version.split(':', 1)[-1]}_source.changes"
    return ["dpkg-genchanges", "--build=source", f"-O{target}"]


def cross_options(options: BuildOptions) -> BuildOptions:
    """A cross build's options as sbuild sets them: arch-any, the ``cross`` and ``nocheck`` profiles."""
    if not options.host_arch:
        return options
    profiles = tuple(dict.fromkeys((*options.profiles, "cross", "nocheck")))
    arch: BuildSelection = "any" if options.arch == "any,all" else options.arch
    return dataclasses.replace(options, profiles=profiles, nocheck=True, arch=arch)


def cross_packages(options: BuildOptions) -> tuple[str, ...]:
    """What a cross build needs besides its build dependencies (sbuild's crossbuild core dependencies)."""
    arch = options.host_arch
    return (f"crossbuild-essential-{arch}:native", f"libc-dev:{arch}", f"libstdc++-dev:{arch}") if arch else ()


def _apt_build_dep_base(options: BuildOptions, verb: str) -> list[str]:
    argv = ["apt-get", "--yes", "-o", "APT::Get::Build-Dep-Automatic=true", "-o", "APT::Install-Recommends=false",
            "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]
    if options.host_arch:
        argv += ["-o", f"APT::Get::Host-Architecture={options.host_arch}"]
    return [*argv, verb]


def build_dep_command(dsc_inside: str, options: BuildOptions) -> list[str]:
    """apt-get build-dep on the .dsc: Build-Depends(-Arch/-Indep), conflicts, profiles, arch restrictions."""
    argv = _apt_build_dep_base(options, "build-dep")
    if options.arch == "any" and not options.source:
        argv.append("--arch-only")
    elif options.arch == "all" and not options.source:
        argv.append("--indep-only")
    if options.all_profiles:
        argv += ["-P", ",".join(options.all_profiles)]
    argv.append(dsc_inside)
    return argv


def _relation_fields(options: BuildOptions, kind: str) -> tuple[str, ...]:
    """``Build-Depends``/``Build-Conflicts`` fields that apply to the selected build (as dpkg-checkbuilddeps)."""
    fields = [f"Build-{kind}"]
    if options.source or "any" in options.arch:
        fields.append(f"Build-{kind}-Arch")
    if options.source or "all" in options.arch:
        fields.append(f"Build-{kind}-Indep")
    return tuple(fields)


def first_alternatives(relations: str) -> str:
    """Each alternative group cut to its first alternative, as Debian's buildds resolve for unstable.

    A group whose first alternative carries an architecture or profile
    restriction stays whole: apt then decides which part applies here.
    """
    from debian.deb822 import PkgRelation  # imported where used: a warm run must start fast

    groups = PkgRelation.parse_relations(relations)
    kept = [group if group[0].get("arch") or group[0].get("restrictions") else group[:1] for group in groups]
    return str(PkgRelation.str(kept))


def selected_relations(source: SourcePackage, options: BuildOptions) -> tuple[list[str], list[str]]:
    """The build's Build-Depends fields (first alternatives unless ``resolve_alternatives``) and Build-Conflicts."""
    relations = dict(source.build_relations)
    depends = [relations[f] for f in _relation_fields(options, "Depends") if relations.get(f, "").strip()]
    conflicts = [relations[f] for f in _relation_fields(options, "Conflicts") if relations.get(f, "").strip()]
    wanted = [first_alternatives(text) if not options.resolve_alternatives else text for text in depends]
    return [w for w in wanted if w], conflicts


def satisfy_build_deps_command(source: SourcePackage, options: BuildOptions) -> list[str]:
    """apt-get satisfy of the build relations, first alternatives only (``--resolve-alternatives`` keeps all).

    With every alternative kept this is what ``apt-get build-dep`` installs;
    satisfy also takes a cross build's core dependencies, virtual ones included.
    """
    wanted, conflicts = selected_relations(source, options)
    argv = _apt_build_dep_base(options, "satisfy")
    if options.all_profiles:
        argv += ["-P", ",".join(options.all_profiles)]
    # as apt-get build-dep: build-essential for the architecture the build runs on (and a cross build's core)
    argv += ["--", ", ".join(["build-essential:native", *cross_packages(options), *wanted])]
    argv += [f"Conflicts: {text}" for text in conflicts]
    return argv


def unpack_command(source: SourcePackage) -> list[str]:
    """Unpack the source as the build user (the signature is checked on the host, not here)."""
    dsc_inside = f"{SOURCE_MOUNT}/{source.dsc.name}"
    return ["dpkg-source", "--no-check", "-x", dsc_inside, f"{BUILD_TOP}/{source.build_dir_name}"]


#: what a collected file may be called: no path, no leading dot, nothing a shell would expand
_COLLECTED_NAME_CHARS = "A-Za-z0-9._+~:-"
_COLLECT_SCRIPT = r"""set -e
cd "$1"; out=$2; shift 2
changes=""
for pattern in "$@"; do
  for c in $pattern; do
    if [ -f "$c" ] && [ ! -L "$c" ]; then changes="$changes $c"; fi
  done
done
set -f
if [ -z "$changes" ]; then echo "deb-mock: the build wrote no .changes file" >&2; exit 1; fi
listed=$(for c in $changes; do
  printf '%s\n' "$c"
  sed -n '/^Files:/,/^[^ ]/s/^ [^ ][^ ]* [^ ][^ ]* [^ ][^ ]* [^ ][^ ]* \([^ ][^ ]*\)$/\1/p' "$c"
done | sort -u)
for f in $listed; do
  case $f in
    */*|.*|*[!CHARS]*) echo "deb-mock: refusing the name '$f' listed in a .changes file" >&2; exit 1;;
  esac
  if [ -L "$f" ] || [ ! -f "$f" ]; then
    echo "deb-mock: refusing $f: not a regular file in the build directory" >&2; exit 1
  fi
done
stage=$(mktemp -d "$out/.collect.XXXXXX")
trap '[ ! -d "$stage" ] || rm -rf -- "$stage"' EXIT
cp --no-preserve=all -- $listed "$stage/"
cd "$stage"; mv -f -t "$out" -- $listed; cd /
rmdir -- "$stage"
printf '%s\n' $listed
""".replace("CHARS", _COLLECTED_NAME_CHARS)


def collect_command(changes_patterns: Sequence[str]) -> list[str]:
    """Copy what the build's ``.changes`` files list (and those files) from BUILD_TOP into RESULT_MOUNT.

    Only what dpkg-genchanges listed leaves the build: a file the build wrote
    beside its results, or a listed name that is a symlink or not a regular
    file, never reaches the result directory (a symlink or an odd name fails
    the step). Copies drop ownership and special mode bits. All land in a
    fresh hidden directory first (one cp) and are then renamed into place (one
    mv), so a link already in the result directory is replaced, never
    followed, and a result appears whole or not at all. Prints the names copied.
    """
    return ["/bin/sh", "-c", _COLLECT_SCRIPT, "sh", BUILD_TOP, RESULT_MOUNT, *changes_patterns]


def extra_repo_script() -> list[str]:
    """Index the .debs copied into EXTRA_REPO and point apt at it (trusted, local)."""
    script = (
        f'set -e; cd {EXTRA_REPO}; dpkg-scanpackages --multiversion . > Packages; '
        f'echo "deb [trusted=yes] file:{EXTRA_REPO} ./" > {EXTRA_LIST}'
    )
    return ["/bin/sh", "-c", script]


def extra_repo_update_command() -> list[str]:
    """apt-get update of the local repository alone (works offline)."""
    return ["apt-get", "--yes", "update", "-o", f"Dir::Etc::SourceList={EXTRA_LIST}",
            "-o", "Dir::Etc::SourceParts=-", "-o", "APT::Get::List-Cleanup=0"]
