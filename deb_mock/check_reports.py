"""Checks of build results: the pure part (what to install, how to read the outcome).

autopkgtest runs with its ``null`` server inside a throw-away layer, offline
unless a test declares ``needs-internet``. So the tests' dependencies are
installed first, with the network, from what ``debian/tests/control`` says
(``@`` the built binaries, ``@builddeps@`` the build dependencies plus
build-essential, as autopkgtest expands them). Its summary file is read
back into one record per test. The install/remove/purge check compares
file lists taken before and after. All of it is text in, data out.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence

#: restrictions the null server cannot meet: autopkgtest skips (and reports) those tests itself
UNMET_RESTRICTIONS = frozenset({"isolation-machine", "isolation-container", "breaks-testbed"})
#: autopkgtest's exit codes (autopkgtest(1)): which mean tests ran and failed, which mean it could not test
FAILED_CODES = frozenset({4, 6})
ERROR_CODES = frozenset({12, 14, 16, 20})
#: paths whose contents change by themselves or belong to apt/dpkg's bookkeeping (piuparts ignores them too)
IGNORED_PREFIXES: tuple[str, ...] = (
    "/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp", "/var/cache", "/var/log", "/var/lib/apt",
    "/var/lib/dpkg", "/var/lib/ucf", "/var/lib/systemd/deb-systemd", "/var/lib/deb-mock-extra",
    "/etc/apt/sources.list.d/deb-mock-extra.list", "/etc/ld.so.cache", "/var/lib/deb-mock-piuparts",
)
_SUMMARY = re.compile(r"^(\S+)\s+(PASS|FAIL|SKIP|FLAKY|NEUTRAL)(?:\s+(.*))?$")


@dataclasses.dataclass(frozen=True)
class TestPlan:
    """What the tests of a source need before autopkgtest runs."""

    #: one alternative-list per dependency, for ``apt-get satisfy``
    dependencies: tuple[str, ...]
    needs_internet: bool
    #: tests autopkgtest will skip here, and why
    skipped: dict[str, str]


def _relation_items(value: str) -> list[str]:
    return [item.strip() for item in value.replace("\n", " ").split(",") if item.strip()]


def plan_tests(tests_control: str, binaries: Sequence[str], build_relations: Iterable[tuple[str, str]]) -> TestPlan:
    """The dependencies to install for every test that can run here, and whether any needs the network."""
    from debian.deb822 import Deb822  # imported where used: a warm run must start fast

    build_deps = [item for field, value in build_relations
                  if field in ("Build-Depends", "Build-Depends-Indep", "Build-Depends-Arch")
                  for item in _relation_items(value)]
    dependencies: list[str] = []
    needs_internet = False
    skipped: dict[str, str] = {}
    for index, stanza in enumerate(Deb822.iter_paragraphs(tests_control)):
        names = (stanza.get("Tests") or f"command{index + 1}").split()
        restrictions = set(re.split(r"[\s,]+", stanza.get("Restrictions", "").strip())) - {""}
        unmet = sorted(restrictions & UNMET_RESTRICTIONS)
        if unmet:
            skipped.update({name: f"needs {', '.join(unmet)}: deb-mock's sandbox is not a machine" for name in names})
            continue
        needs_internet |= "needs-internet" in restrictions
        for item in _relation_items(stanza.get("Depends", "@")):
            if item == "@":
                dependencies.extend(binaries)
            elif item == "@builddeps@":
                dependencies.extend([*build_deps, "build-essential"])
            elif item != "@recommends@":  # the binaries' Recommends: apt installs none by choice here
                dependencies.append(item)
    return TestPlan(tuple(dict.fromkeys(dependencies)), needs_internet, skipped)


def parse_summary(text: str) -> tuple[list[dict[str, str]], str | None]:
    """autopkgtest's summary: one record per test (first line per name wins), and a testbed failure if any."""
    tests: dict[str, dict[str, str]] = {}
    failure = None
    for line in text.splitlines():
        if line.startswith("testbed failure:"):
            failure = line.split(":", 1)[1].strip()
            continue
        match = _SUMMARY.match(line)
        if match and match.group(1) not in tests:
            tests[match.group(1)] = {"name": match.group(1), "result": match.group(2).lower(),
                                     "detail": match.group(3) or ""}
    return list(tests.values()), failure


def autopkgtest_status(returncode: int) -> str:
    """pass, fail, neutral (nothing ran) or error (autopkgtest could not test) from its exit code."""
    if returncode in (0, 2):
        return "pass"
    if returncode in FAILED_CODES:
        return "fail"
    if returncode == 8:
        return "neutral"
    return "error"


def leftovers(new_paths: Iterable[str]) -> list[str]:
    """Of the paths that appeared between the first file list and the one after the purge (``comm -13`` in
    the root), those that count as left behind: apt and dpkg's own files and volatile places aside."""
    return sorted(path for path in set(new_paths)
                  if not any(path == prefix or path.startswith(prefix + "/") for prefix in IGNORED_PREFIXES))
