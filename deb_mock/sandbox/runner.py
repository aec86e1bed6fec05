"""Start a command in a sandbox and follow it from the host side.

The parent's job is small: hand the spec to the namespace init, stream the
command's output to whoever listens (root.log, the terminal, a progress line),
and make sure that an interrupted deb-mock takes its sandbox down with it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import marshal
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from deb_mock.errors import SandboxError, TimedOut
from deb_mock.sandbox.spec import SandboxSpec

INIT_SCRIPT = Path(__file__).with_name("init.py")
#: how the init starts: imported, not run as a script, so Python loads its cached bytecode instead of
#: compiling 500 lines on every entry (-I ignores PYTHONDONTWRITEBYTECODE; a wheel's install compiles it);
#: the code names INIT_SCRIPT's directory, which is how --orphanskill recognises an init
INIT_LAUNCHER = f"import sys;sys.path.insert(0,{str(INIT_SCRIPT.parent)!r});import init;init.main()"
#: every sandbox entry starts a session of its own: no controlling terminal of the caller's reaches the root
#: seconds a sandbox gets to stop after SIGTERM before it is killed
STOP_GRACE = 3.0


class OutputSink(Protocol):
    """Receives a sandboxed command's output as it comes."""

    def data(self, chunk: bytes) -> None:
        """Output as it arrives (raw bytes, not split into lines)."""

    def finish(self) -> None:
        """The command's output ended."""

    def tick(self) -> None:
        """Called about twice a second while the command runs (progress displays)."""


def init_command(spec: SandboxSpec, spec_fd: int, status_fd: int) -> list[str]:
    """The argument list that starts the namespace init for ``spec``.

    Only the root's tag is on it (``--orphanskill`` finds the init by it); the
    spec, whose environment may hold secrets, goes through ``spec_fd``.
    """
    return [sys.executable, "-I", "-S", "-c", INIT_LAUNCHER, f"--tag={spec.marker}", str(spec_fd), str(status_fd)]


def _spawn(spec: SandboxSpec, status_fd: int, **popen: Any) -> subprocess.Popen[bytes]:
    """Start the init with ``spec`` on a pipe of its own (never on the command line, which ``ps`` shows)."""
    payload = json.loads(spec.to_json())
    payload["parent_pid"] = os.getpid()
    spec_read, spec_write = os.pipe()
    try:
        process = subprocess.Popen(init_command(spec, spec_read, status_fd), pass_fds=(status_fd, spec_read),
                                   start_new_session=True, **popen)
    finally:
        os.close(spec_read)
    try:
        with open(spec_write, "wb") as pipe:
            pipe.write(marshal.dumps(payload))  # the init reads it without importing json
    except BrokenPipeError:
        pass  # the init died at once; its status says why
    return process


def run_interactive(spec: SandboxSpec) -> int:
    """Run for a person (``--shell``): nothing is captured or logged.

    On a terminal, the command gets a pty of its own that deb-mock relays to
    the caller's (see :mod:`deb_mock.sandbox.terminal`), never the caller's
    terminal itself; without one, it gets deb-mock's standard streams.
    """
    if not os.isatty(0):
        return _run_with_streams(spec, None, None)
    from deb_mock.sandbox.terminal import relayed_pty

    with relayed_pty(0) as (slave, relay):
        return _run_with_streams(dataclasses.replace(spec, terminal=True), slave, relay)


def _run_with_streams(spec: SandboxSpec, pty_slave: int | None,
                      relay: Callable[[Callable[[], bool]], None] | None) -> int:
    with _status_pipe() as (read_fd, write_fd):
        try:
            streams = {} if pty_slave is None else {"stdin": pty_slave, "stdout": pty_slave, "stderr": pty_slave}
            process = _spawn(spec, write_fd, **streams)
        finally:
            os.close(write_fd)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            if relay is not None:
                relay(lambda: process.poll() is not None)
            returncode = _wait(process)
        finally:
            signal.signal(signal.SIGINT, previous)
        _raise_setup_error(read_fd)
    return returncode


def run_captured(spec: SandboxSpec, sink: OutputSink, stdin: IO[bytes] | int | None = None,
                 timeout: float | None = None) -> int:
    """Run with stdout and stderr merged and streamed line by line to ``sink``.

    After ``timeout`` seconds the sandbox is stopped (SIGTERM to the command,
    then the whole PID namespace is killed) and :class:`TimedOut` is raised.
    """
    with _status_pipe() as (read_fd, write_fd):
        try:
            process = _spawn(spec, write_fd, stdin=subprocess.DEVNULL if stdin is None else stdin,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        finally:
            os.close(write_fd)
        try:
            assert process.stdout is not None
            deadline = None if timeout is None else time.monotonic() + timeout
            if not _pump(process.stdout, sink, deadline):
                _stop(process)
                raise TimedOut(f"stopped after {timeout:g} seconds (the time limit)")
            returncode = _wait(process)
        except BaseException:
            _stop(process)
            raise
        _raise_setup_error(read_fd)
    return returncode


@contextlib.contextmanager
def piped(spec: SandboxSpec) -> Iterator[subprocess.Popen[bytes]]:
    """The command with its standard input and output on pipes the caller drives (a console to answer).

    When the block ends the sandbox is stopped, its whole PID namespace with
    it; a failed set-up raises SandboxError, which says more than the silence
    the caller saw.
    """
    with _status_pipe() as (read_fd, write_fd):
        try:
            process = _spawn(spec, write_fd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        finally:
            os.close(write_fd)
        try:
            yield process
        finally:
            _stop(process)
            close_pipes(process)
            _raise_setup_error(read_fd)


def close_pipes(process: subprocess.Popen[bytes]) -> None:
    """Close the pipes of a process that has ended (its stdin may fail to flush into a closed pipe)."""
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(BrokenPipeError):
                stream.close()


def start_keeper(spec: SandboxSpec, timeout: float = 10.0) -> tuple[subprocess.Popen[bytes], int]:
    """Start a run's session keeper: a sleeping process whose mount namespace holds ``spec.host_mounts``.

    Every sandbox entry of the run joins that namespace first (``join_mount_ns``),
    so a tmpfs there (scratch space in RAM) lives across entries while the
    host never sees it; the keeper, and with it the tmpfs, dies with deb-mock.
    Returns the process and the pid whose namespace to join.
    """
    read_fd, write_fd = os.pipe()
    try:
        process = _spawn(spec, write_fd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    finally:
        os.close(write_fd)
    try:
        deadline = time.monotonic() + timeout
        holder = 0
        while time.monotonic() < deadline and process.poll() is None:
            holder = holder or _first_child(process.pid)
            if holder and _first_child(holder):  # PID 1 forked the sleeper: its mounts are done
                return process, holder
            time.sleep(0.005)
        _stop(process)
        _raise_setup_error(read_fd)
        raise SandboxError("the session's namespace keeper did not start")
    finally:
        os.close(read_fd)


def stop_keeper(process: subprocess.Popen[bytes]) -> None:
    """End a session keeper (its tmpfs goes with it)."""
    _stop(process)


def _first_child(pid: int) -> int:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0
    return int(children[0]) if children else 0


def _pump(stream: IO[bytes], sink: OutputSink, deadline: float | None = None) -> bool:
    """Pass output on until it ends (True) or ``deadline`` (time.monotonic) passes (False)."""
    fd = stream.fileno()
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            sink.finish()
            return False
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            sink.tick()
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        sink.data(chunk)
        sink.tick()
    sink.finish()
    return True


class LineSplitter:
    """Base for sinks that think in lines: turns raw chunks into ``line()`` calls."""

    def __init__(self) -> None:
        self._pending = b""

    def data(self, chunk: bytes) -> None:
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        for raw in lines:
            self.line(raw.decode("utf-8", "replace").rstrip("\r"))

    def finish(self) -> None:
        if self._pending:
            self.line(self._pending.decode("utf-8", "replace"))
            self._pending = b""

    def line(self, text: str) -> None:
        """One line of output, without its newline."""
        raise NotImplementedError

    def tick(self) -> None:
        """Nothing to refresh by default."""


class LineCollector(LineSplitter):
    """An output sink that keeps every line (for listings read back by deb-mock)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)


def _wait(process: subprocess.Popen[bytes]) -> int:
    try:
        return process.wait()
    except BaseException:
        _stop(process)
        raise


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Ask the sandbox to stop, then kill it; its PID namespace dies with its init."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait()


@contextlib.contextmanager
def _status_pipe() -> Iterator[tuple[int, int]]:
    """A pipe for the init's set-up errors; the caller closes the write end after the spawn."""
    read_fd, write_fd = os.pipe()
    try:
        yield read_fd, write_fd
    finally:
        os.close(read_fd)


def _raise_setup_error(read_fd: int) -> None:
    data = b""
    while chunk := os.read(read_fd, 65536):
        data += chunk
    if not data:
        return
    raise SandboxError(f"sandbox set-up failed: {data.decode('utf-8', 'replace')}")

