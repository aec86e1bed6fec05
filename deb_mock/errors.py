"""Errors that end a run, each carrying the exit code a build system reads.

The codes follow mock's documented table where the meaning matches, so that
orchestrators written for mock can read deb-mock's exit status unchanged.
The table is printed in deb-mock(1).
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit statuses of deb-mock (see deb-mock(1), EXIT STATUS)."""

    SUCCESS = 0
    ERROR = 1
    CONFIG = 3
    CHAIN_PARTIAL = 4
    USAGE = 5
    ARCH = 6
    INTERRUPTED = 7
    BUILD = 10
    TIMEOUT = 11
    CHECKS = 12
    SIGNING = 13
    ROOT = 20
    APT = 30
    EXTERNAL_DEP = 31
    PACKAGE = 40
    COMMAND = 50
    LOCKED = 60
    RESULTDIR = 70
    SANDBOX = 80
    BOOTSTRAP = 90


class DebMockError(Exception):
    """An error a user can act on: printed as one message, never a traceback."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(DebMockError):
    """A configuration file or option is wrong (names file, line and key)."""

    exit_code = ExitCode.CONFIG


class UsageError(DebMockError):
    """The command line is wrong."""

    exit_code = ExitCode.USAGE


class ArchError(DebMockError):
    """The requested architecture cannot run on this host."""

    exit_code = ExitCode.ARCH


class Interrupted(DebMockError):
    """The run was interrupted by SIGINT or SIGTERM."""

    exit_code = ExitCode.INTERRUPTED


class TimedOut(DebMockError):
    """A command ran longer than it was allowed (--build-timeout, a boot check)."""

    exit_code = ExitCode.TIMEOUT


class RootError(DebMockError):
    """The root is missing, damaged or a command in it failed."""

    exit_code = ExitCode.ROOT


class AptError(DebMockError):
    """apt failed inside the root."""

    exit_code = ExitCode.APT


class LockedError(DebMockError):
    """The root is locked by another deb-mock process."""

    exit_code = ExitCode.LOCKED


class ResultDirError(DebMockError):
    """The result directory cannot be created or written."""

    exit_code = ExitCode.RESULTDIR


class SandboxError(DebMockError):
    """Namespaces or mounts could not be set up."""

    exit_code = ExitCode.SANDBOX


class BootstrapError(DebMockError):
    """mmdebstrap failed to create the base tree."""

    exit_code = ExitCode.BOOTSTRAP


class BuildError(DebMockError):
    """dpkg-buildpackage failed."""

    exit_code = ExitCode.BUILD


class SigningFailed(DebMockError):
    """The results were built but could not be signed (-k/--keyid); they are kept unsigned."""

    exit_code = ExitCode.SIGNING


class ChecksFailed(DebMockError):
    """The build succeeded, but a check of its results that was made fatal failed (autopkgtest, piuparts)."""

    exit_code = ExitCode.CHECKS


class PackageError(DebMockError):
    """A source package is malformed, incomplete or corrupted."""

    exit_code = ExitCode.PACKAGE


class ChainPartial(DebMockError):
    """--chain --continue built only some of its packages."""

    exit_code = ExitCode.CHAIN_PARTIAL
