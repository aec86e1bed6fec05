"""deb-mock as a Buildbot builder's engine: a step, the exit codes as Buildbot results, a factory.

Use in a master.cfg::

    from debmock_buildbot import deb_mock_factory
    c["builders"].append(util.BuilderConfig(
        name="trixie-amd64", workernames=["w1", "w2"],
        factory=deb_mock_factory("trixie-amd64", util.Property("dsc"))))

Each build runs, on its worker, ``deb-mock -r CONFIG --uniqueext WORKER``
(concurrent builds of a worker get their own roots, sharing the caches):

1. ``--init``, under a master lock per configuration, so that the first
   builds of a farm bootstrap a configuration once (the others then restore it,
   from the worker's root cache or the remote cache) rather than all at once;
2. ``--rebuild SOURCE --resultdir result --json``, with ``result/build.log``
   and ``result/root.log`` streamed into the step's logs while they grow;
3. the result directory uploaded to the master (also after a failure: its
   logs and result.json say why).

deb-mock's exit codes become Buildbot's results (deb-mock(1), EXIT STATUS):
10, 12, 30 and 40 (the package) are FAILURE, 60 and 90 (a busy root, a
bootstrap that failed) RETRY, 7 (interrupted) CANCELLED, any other EXCEPTION.
"""

from __future__ import annotations

from typing import Any

from buildbot.plugins import steps, util
from buildbot.process.results import CANCELLED, EXCEPTION, FAILURE, RETRY, SUCCESS

#: the exit statuses with a meaning for the engine; every other non-zero one is EXCEPTION
RESULTS = {0: SUCCESS, 10: FAILURE, 12: FAILURE, 30: FAILURE, 40: FAILURE, 60: RETRY, 90: RETRY, 7: CANCELLED}
DECODE_RC = {code: RESULTS.get(code, EXCEPTION) for code in range(256)}
_INIT_LOCKS: dict[str, Any] = {}


def result_for(exit_code: int) -> int:
    """Buildbot's result for a deb-mock exit status."""
    return DECODE_RC.get(exit_code, EXCEPTION)


def init_lock(config: str) -> Any:
    """The master lock of a configuration's first bootstrap (one per configuration, shared by every builder)."""
    if config not in _INIT_LOCKS:
        _INIT_LOCKS[config] = util.MasterLock(f"deb-mock-init-{config}")
    return _INIT_LOCKS[config]


class DebMock(steps.ShellCommand):
    """One deb-mock run on the worker, on the worker's own root of ``config``."""

    def __init__(self, config: str, args: list[Any], deb_mock: list[str] | None = None,
                 resultdir: str = "result", **kwargs: Any) -> None:
        command = [*(deb_mock or ["deb-mock"]), "-r", config, "--uniqueext", util.Property("workername"), *args]
        kwargs.setdefault("logfiles", {"build.log": f"{resultdir}/build.log", "root.log": f"{resultdir}/root.log"})
        kwargs.setdefault("lazylogfiles", True)
        super().__init__(command=command, decodeRC=DECODE_RC, **kwargs)


def deb_mock_factory(config: str, source: Any, deb_mock: list[str] | None = None,
                     resultdir: str = "result", upload_to: Any = None) -> util.BuildFactory:
    """Init (locked per configuration), rebuild ``source`` (a .dsc path, a NAME[/SUITE], or a renderable)
    and upload the result directory to ``upload_to`` on the master (results/BUILDER/NUMBER by default)."""
    factory = util.BuildFactory()
    factory.addStep(DebMock(config, ["--init"], deb_mock, resultdir, name="init", haltOnFailure=True,
                            locks=[init_lock(config).access("exclusive")], logfiles={}))
    factory.addStep(steps.RemoveDirectory(dir=util.Interpolate(f"%(prop:builddir)s/build/{resultdir}"),
                                          name="clean results", hideStepIf=True))
    factory.addStep(DebMock(config, ["--json", "--resultdir", resultdir, "--rebuild", source], deb_mock, resultdir,
                            name="rebuild"))
    factory.addStep(steps.DirectoryUpload(
        workersrc=resultdir, alwaysRun=True, name="upload results",
        masterdest=upload_to or util.Interpolate("results/%(prop:buildername)s/%(prop:buildnumber)s")))
    return factory
