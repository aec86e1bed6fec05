"""The result of a run: what --json prints and result.json holds.

Build systems read this instead of scraping logs, so its keys are stable:
status, exit_code, root, mode, durations, artifacts (path, size, sha256),
config_digest, resultdir, and error and failure (package or infrastructure)
when the run failed.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from deb_mock.digests import file_digest
from deb_mock.errors import DebMockError, ExitCode
from deb_mock.fileio import write_atomic

#: exit statuses that are the package's doing: its build failed, its build dependencies cannot be met, its
#: source is broken, its checks (lintian, autopkgtest, piuparts) failed
PACKAGE_FAILURES = frozenset({ExitCode.BUILD, ExitCode.APT, ExitCode.PACKAGE, ExitCode.CHECKS})


@dataclasses.dataclass(frozen=True)
class Artifact:
    """One file a run produced."""

    path: str
    size: int
    sha256: str

    @classmethod
    def of(cls, path: Path) -> Artifact:
        return cls(str(path), path.stat().st_size, file_digest(path))


@dataclasses.dataclass
class RunResult:
    """Outcome of one deb-mock run."""

    mode: str
    root: str = ""
    exit_code: int = 0
    error: str | None = None
    durations: dict[str, float] = dataclasses.field(default_factory=dict)
    artifacts: list[Artifact] = dataclasses.field(default_factory=list)
    config_digest: str = ""
    resultdir: str = ""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def record_failure(self, exc: BaseException) -> None:
        """Set the exit code and error from the exception that ended the run (the table in deb-mock(1))."""
        if isinstance(exc, DebMockError):
            self.exit_code, self.error = int(exc.exit_code), exc.message
        elif isinstance(exc, KeyboardInterrupt):
            self.exit_code, self.error = int(ExitCode.INTERRUPTED), "interrupted"
        else:
            self.exit_code, self.error = int(ExitCode.ERROR), f"{type(exc).__name__}: {exc}"

    @property
    def status(self) -> str:
        return "success" if self.exit_code == 0 else "failure"

    @property
    def failure(self) -> str | None:
        """Whose the failure is, for an engine that retries: ``package`` (it fails the same anywhere) or
        ``infrastructure`` (the builder, the network, the run's input: another try or another builder)."""
        if self.exit_code == 0:
            return None
        return "package" if self.exit_code in PACKAGE_FAILURES else "infrastructure"

    def to_dict(self) -> dict[str, Any]:
        data = {
            "status": self.status,
            "exit_code": self.exit_code,
            "root": self.root,
            "mode": self.mode,
            "durations": {k: round(v, 3) for k, v in self.durations.items()},
            "artifacts": [dataclasses.asdict(a) for a in self.artifacts],
            "config_digest": self.config_digest,
            "resultdir": self.resultdir,
        }
        if self.error is not None:
            data["error"] = self.error
        if self.failure is not None:
            data["failure"] = self.failure
        data.update(self.extra)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def write(self, resultdir: Path) -> None:
        """Write result.json atomically into ``resultdir``."""
        write_atomic(resultdir / "result.json", self.to_json() + "\n")
