"""What the result checks install and how they read autopkgtest's summary and the file lists."""

from __future__ import annotations

from deb_mock import check_reports

CONTROL = """\
Tests: smoke unit
Depends: @, python3 (>= 3.11) | python3-minimal

Test-Command: curl -s https://example.invalid/
Depends: curl
Restrictions: needs-internet, allow-stderr

Tests: boot
Restrictions: isolation-machine,breaks-testbed
Depends: qemu-system-x86

Tests: rebuild
Depends: @builddeps@, @recommends@
"""
BUILD_RELATIONS = [("Build-Depends", "debhelper-compat (= 13),\n libfoo-dev [amd64] <!nocheck>"),
                   ("Build-Depends-Indep", "python3-sphinx"), ("Build-Conflicts", "libbar-dev")]


def test_plan_expands_at_and_builddeps_and_skips_machine_tests() -> None:
    plan = check_reports.plan_tests(CONTROL, ["foo", "foo-utils"], BUILD_RELATIONS)
    assert plan.dependencies == ("foo", "foo-utils", "python3 (>= 3.11) | python3-minimal", "curl",
                                 "debhelper-compat (= 13)", "libfoo-dev [amd64] <!nocheck>", "python3-sphinx",
                                 "build-essential")
    assert plan.needs_internet
    assert set(plan.skipped) == {"boot"} and "isolation-machine" in plan.skipped["boot"]


def test_plan_without_network_tests_stays_offline() -> None:
    plan = check_reports.plan_tests("Tests: a\n", ["foo"], [])
    assert plan == check_reports.TestPlan(("foo",), False, {})


def test_summary_lines_become_records_first_line_per_name() -> None:
    summary = """\
boot                 SKIP Test restriction "isolation-machine" requires testbed capability "isolation-machine"
boot                 SKIP Test restriction "isolation-machine" requires testbed capability "isolation-machine"
smoke                PASS
unit                 FAIL non-zero exit status 1
flaky                FLAKY non-zero exit status 1
blame: /tmp/foo
badpkg: Test dependencies are unsatisfiable.
"""
    tests, failure = check_reports.parse_summary(summary)
    assert [(t["name"], t["result"]) for t in tests] == [("boot", "skip"), ("smoke", "pass"), ("unit", "fail"),
                                                         ("flaky", "flaky")]
    assert tests[2]["detail"] == "non-zero exit status 1" and failure is None


def test_a_testbed_failure_is_reported() -> None:
    tests, failure = check_reports.parse_summary("smoke  PASS\ntestbed failure: apt failed to download packages\n")
    assert failure == "apt failed to download packages" and len(tests) == 1


def test_exit_codes_map_to_statuses() -> None:
    assert [check_reports.autopkgtest_status(code) for code in (0, 2, 4, 6, 8, 12, 16, 20)] == [
        "pass", "pass", "fail", "fail", "neutral", "error", "error", "error"]


def test_leftovers_ignore_apt_and_dpkg_bookkeeping() -> None:
    before = ["/", "/etc", "/etc/passwd", "/var", "/var/lib"]
    after = [*before, "/var/lib/foo", "/var/lib/foo/state", "/var/lib/dpkg/info/foo.list", "/var/log/foo.log",
             "/etc/apt/sources.list.d/deb-mock-extra.list", "/var/lib/apt/extended_states", "/etc/foo.conf"]
    new = [path for path in after if path not in before]
    assert check_reports.leftovers(new) == ["/etc/foo.conf", "/var/lib/foo", "/var/lib/foo/state"]
