"""Check a build's results before an upload: autopkgtest and an install/remove/purge test.

Each check runs in a throw-away layer of its own over the root's base (never
over the build's layer), inside the sandbox like everything else, and is
thrown away afterwards, so nothing it installs or breaks outlives it.

- autopkgtest (from the root's release) runs with its ``null`` server: the
  layer is the testbed. The tests' dependencies are installed first, with
  the network; the tests then run offline unless one declares
  ``needs-internet``. Tests needing a machine (``isolation-machine`` and the
  like) are skipped by autopkgtest and reported as skipped.
- The piuparts check installs the built packages with apt, removes them,
  purges them with the dependencies they brought, and compares the file
  list with the one taken before: maintainer scripts that fail and files
  left behind fail it, as piuparts' basic test does.

By default a failing check is reported (result.json, autopkgtest.log,
piuparts.log) and the build still succeeds, as sbuild does;
``--autopkgtest-fail``/``--piuparts-fail`` make it exit 12.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from deb_mock import apt, check_reports
from deb_mock.build_commands import SOURCE_MOUNT
from deb_mock.errors import ChecksFailed, DebMockError
from deb_mock.result import Artifact
from deb_mock.sandbox.spec import RUN_DIR, Bind, Mount, RootFs, with_run_dir
from deb_mock.services import Purpose, RootServices
from deb_mock.source import SourcePackage

#: where the built packages appear inside a check's root
RESULTS_MOUNT = f"{RUN_DIR}/results"
_SUMMARY_MARK = "@@deb-mock: autopkgtest summary@@"
_LEFTOVER_MARK = "@@deb-mock: leftovers@@"
_STEP_MARK = "@@deb-mock: step "
#: piuparts' cycle as one script in the root: file list, install, remove, purge, file list again
_PIUPARTS_SCRIPT = r"""
snap() {
    find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp -o -path /var/tmp \
        -o -path /var/cache -o -path /var/log -o -path /var/lib/deb-mock-piuparts \) -prune -o -print \
        | LC_ALL=C sort > "/var/lib/deb-mock-piuparts/$1"
}
step() { echo "@@deb-mock: step $1 $2"; }
mkdir -p /var/lib/deb-mock-piuparts
snap before
names=$1; shift
if apt-get "$@" install --no-install-recommends ./*.deb; then step install ok; else step install failed; exit 0; fi
if apt-get "$@" remove $names; then step remove ok; else step remove failed; fi
if dpkg --purge $names && apt-get "$@" autoremove --purge; then step purge ok; else step purge failed; fi
snap after
echo "@@deb-mock: leftovers@@"
LC_ALL=C comm -13 /var/lib/deb-mock-piuparts/before /var/lib/deb-mock-piuparts/after
"""


@dataclasses.dataclass(frozen=True)
class CheckOptions:
    """Which checks run and whether their failure fails the run."""

    autopkgtest: bool = False
    autopkgtest_opts: tuple[str, ...] = ()
    autopkgtest_fail: bool = False
    piuparts: bool = False
    piuparts_fail: bool = False


def binary_debs(artifacts: list[Artifact]) -> list[Path]:
    """The built .deb files a check installs (debug symbols aside)."""
    return [Path(a.path) for a in artifacts if a.path.endswith(".deb") and "-dbgsym_" not in a.path]


def package_name(deb: Path) -> str:
    """The binary package a ``NAME_VERSION_ARCH.deb`` file holds."""
    return deb.name.split("_", 1)[0]


def run_checks(services: RootServices, source: SourcePackage, artifacts: list[Artifact], resultdir: Path,
               options: CheckOptions) -> None:
    """Run the chosen checks on a successful build's results; exit 12 for a failure the options make fatal."""
    debs = binary_debs(artifacts)
    failed: list[str] = []
    if options.autopkgtest:
        report = Autopkgtest(services, source, debs, resultdir).run(options.autopkgtest_opts)
        services.result.extra.setdefault("autopkgtest", []).append(report)
        _tell(services, "autopkgtest", report, counts(report["tests"]))
        if report["status"] in ("fail", "error") and options.autopkgtest_fail:
            failed.append(f"autopkgtest: {report['status']} ({report.get('reason') or report['exit_code']})")
    if options.piuparts:
        report = {"source": source.name, "version": source.version, **piuparts(services, debs, resultdir)}
        services.result.extra.setdefault("piuparts", []).append(report)
        _tell(services, "piuparts", report, report["reason"])
        if report["status"] != "pass" and options.piuparts_fail:
            failed.append(f"piuparts: {report['reason']}")
    if failed:
        raise ChecksFailed(f"{source.name} {source.version} built, but its checks failed: " + "; ".join(failed),
                           hint=f"the checks' logs are in {resultdir}")


def counts(tests: list[dict[str, str]]) -> str:
    """``2 pass, 1 fail, 1 skip`` for a list of test records."""
    tally: dict[str, int] = {}
    for test in tests:
        tally[test["result"]] = tally.get(test["result"], 0) + 1
    return ", ".join(f"{number} {result}" for result, number in sorted(tally.items())) or "no tests"


def _tell(services: RootServices, check: str, report: dict[str, Any], detail: str) -> None:
    text = f"{check}: {report['status']}" + (f" ({detail})" if detail else "") + f"; the log is {report['log']}"
    if report["status"] in ("pass", "neutral"):
        services.console.info(text)
    else:
        services.console.warn(text)


class Autopkgtest:
    """autopkgtest of one build's results in a throw-away layer."""

    SCRATCH = "autopkgtest"

    def __init__(self, services: RootServices, source: SourcePackage, debs: list[Path], resultdir: Path) -> None:
        self.services = services
        self.source = source
        self.debs = debs
        self.log = resultdir / "autopkgtest.log"
        self.mounts: list[Mount] = with_run_dir(
            *(Bind(str(f), f"{SOURCE_MOUNT}/{f.name}") for f in source.all_files),
            *(Bind(str(deb), f"{RESULTS_MOUNT}/{deb.name}") for deb in debs))

    def run(self, extra_options: tuple[str, ...]) -> dict[str, Any]:
        services = self.services
        self.log.write_text("", encoding="utf-8")
        report: dict[str, Any] = {"source": self.source.name, "version": self.source.version, "log": str(self.log)}
        # autopkgtest itself comes from a cached layer of the root's release; the tests get a fresh upper over it
        with services.logs.stage("autopkgtest"), services.tool_root(self.SCRATCH, ["autopkgtest"]) as root_fs:
            services.console.info(f"autopkgtest: testing {self.source.name} {self.source.version}")
            control = self._tests_control(root_fs)
            if control is None:
                return {**report, "status": "neutral", "exit_code": 8, "tests": [],
                        "reason": "the source has no debian/tests/control"}
            names = [package_name(deb) for deb in self.debs]
            plan = check_reports.plan_tests(control, names, self.source.build_relations)
            try:
                self._install(root_fs, plan)
            except DebMockError as exc:
                return {**report, "status": "error", "exit_code": None, "tests": [],
                        "reason": f"the tests' dependencies cannot be installed: {exc.message.splitlines()[0]}"}
            returncode, summary = self._autopkgtest(root_fs, plan, extra_options)
        tests, failure = check_reports.parse_summary(summary)
        seen = {test["name"] for test in tests}
        tests += [{"name": name, "result": "skip", "detail": why} for name, why in plan.skipped.items()
                  if name not in seen]
        report.update({"status": check_reports.autopkgtest_status(returncode), "exit_code": returncode,
                       "tests": tests, "network": plan.needs_internet})
        if failure:
            report["reason"] = f"testbed failure: {failure}"
        return report

    def _tests_control(self, root_fs: RootFs) -> str | None:
        """debian/tests/control of the source, unpacked inside the root as the build user (None: no tests)."""
        script = ('set -e; rm -rf /tmp/deb-mock-adt; dpkg-source --no-check -x "$1" /tmp/deb-mock-adt >/dev/null; '
                  'if [ -f /tmp/deb-mock-adt/debian/tests/control ]; then echo yes; '
                  'cat /tmp/deb-mock-adt/debian/tests/control; else echo no; fi')
        lines = self.services.checked_run(["/bin/sh", "-c", script, "sh", f"{SOURCE_MOUNT}/{self.source.dsc.name}"],
                                          "autopkgtest-control", root_fs=root_fs, unpriv=True, mounts=self.mounts,
                                          network=False, keep=100_000)
        return "\n".join(lines[1:]) if lines and lines[0] == "yes" else None

    def _install(self, root_fs: RootFs, plan: check_reports.TestPlan) -> None:
        """The built packages and the tests' other dependencies (with the network)."""
        services = self.services
        local = [f"{RESULTS_MOUNT}/{deb.name}" for deb in self.debs]
        services.apt_run(apt.install_command(local), "autopkgtest-apt-results", root_fs=root_fs, mounts=self.mounts)
        built = {package_name(deb) for deb in self.debs}
        others = [dep for dep in plan.dependencies if dep not in built]
        if others:
            services.apt_run(apt.satisfy_command(others), "autopkgtest-apt-deps", root_fs=root_fs)

    def _autopkgtest(self, root_fs: RootFs, plan: check_reports.TestPlan,
                     extra_options: tuple[str, ...]) -> tuple[int, str]:
        services = self.services
        script = (f'rm -rf /tmp/deb-mock-adt-out; autopkgtest "$@"; status=$?; echo "{_SUMMARY_MARK}"; '
                  'cat /tmp/deb-mock-adt-summary 2>/dev/null; exit $status')
        argv = ["/bin/sh", "-c", script, "sh", f"--user={services.config.build_user}",
                "--summary-file=/tmp/deb-mock-adt-summary", "--output-dir=/tmp/deb-mock-adt-out", *extra_options,
                *(f"{RESULTS_MOUNT}/{deb.name}" for deb in self.debs), f"{SOURCE_MOUNT}/{self.source.dsc.name}",
                "--", "null"]
        network = plan.needs_internet and not services.config.offline
        with services.logs.sink("autopkgtest", log_path=self.log, keep=100_000) as sink:
            returncode = services.run_in_root(argv, purpose=Purpose.HELPER, sink=sink, root_fs=root_fs,
                                              mounts=self.mounts, network=network, env={"DEBIAN_FRONTEND":
                                                                                        "noninteractive"})
        tail = sink.tail
        summary = tail[tail.index(_SUMMARY_MARK) + 1:] if _SUMMARY_MARK in tail else []
        return returncode, "\n".join(summary)


def piuparts(services: RootServices, debs: list[Path], resultdir: Path) -> dict[str, Any]:
    """Install, remove and purge the built packages in a throw-away layer; report failures and leftovers."""
    log = resultdir / "piuparts.log"
    log.write_text("", encoding="utf-8")
    names = " ".join(package_name(deb) for deb in debs)
    mounts = with_run_dir(*(Bind(str(deb), f"{RESULTS_MOUNT}/{deb.name}") for deb in debs))
    options = apt.with_options(["apt-get", *apt.base_options()], list(services.config.apt_options))[1:]
    root_fs = services.new_scratch("piuparts")
    try:
        with services.logs.stage("piuparts"), services.logs.sink("piuparts", log_path=log, keep=1_000_000) as sink:
            services.console.info(f"piuparts: install, remove and purge of {names}")
            returncode = services.run_in_root(["/bin/sh", "-c", f"cd {RESULTS_MOUNT} && {{ {_PIUPARTS_SCRIPT} }}",
                                               "sh", names, *options], purpose=Purpose.APT, sink=sink,
                                              root_fs=root_fs, mounts=mounts, env=dict(apt.APT_ENV))
    finally:
        services.discard_scratch("piuparts")
    lines = sink.tail
    steps = {line.split()[2]: line.split()[3] for line in lines if line.startswith(_STEP_MARK)}
    left = check_reports.leftovers(lines[lines.index(_LEFTOVER_MARK) + 1:]) if _LEFTOVER_MARK in lines else []
    failed = [step for step in ("install", "remove", "purge") if steps.get(step) != "ok"]
    reason = ""
    if returncode != 0 or failed:
        reason = f"{', '.join(failed) or 'the check'} failed (see {log})"
    elif left:
        reason = f"{len(left)} file(s) left after the purge: {', '.join(left[:5])}"
    return {"status": "fail" if reason else "pass", "steps": steps, "leftovers": left[:200],
            "leftover_count": len(left), "reason": reason, "log": str(log)}
