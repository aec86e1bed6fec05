"""The result directory's logs and the terminal's progress line.

root.log collects bootstrap, apt and --chroot output; state.log records each
stage with its start, end and duration (the durations also go into
result.json). On a terminal a long stage shows one updating line with its
name and elapsed time; with --json or without a terminal nothing but errors
reaches stderr.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from deb_mock.sandbox.runner import LineSplitter


def _stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())  # UTC


class Console:
    """Human output on stderr; progress only on a terminal and never with --json."""

    def __init__(self, *, json_mode: bool, quiet: bool, verbose: bool, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.json_mode = json_mode
        self.quiet = quiet
        self.verbose = verbose
        self.interactive = self.stream.isatty() and not json_mode and not quiet

    def info(self, message: str) -> None:
        """A short note on what happened (suppressed by --quiet and --json)."""
        if not self.quiet and not self.json_mode:
            self.stream.write(f"deb-mock: {message}\n")
            self.stream.flush()

    def warn(self, message: str) -> None:
        """Always shown (on stderr, so --json stays parseable)."""
        self.stream.write(f"deb-mock: warning: {message}\n")
        self.stream.flush()

    def error(self, message: str) -> None:
        """Always shown."""
        self.stream.write(f"deb-mock: error: {message}\n")
        self.stream.flush()


class RunLogs:
    """root.log and state.log of one result directory, plus per-stage durations."""

    def __init__(self, resultdir: Path, console: Console) -> None:
        self.resultdir = resultdir
        self.console = console
        self.durations: dict[str, float] = {}

    @property
    def root_log(self) -> Path:
        return self.resultdir / "root.log"

    @property
    def state_log(self) -> Path:
        return self.resultdir / "state.log"

    def write_root_log(self, text: str) -> None:
        """Append one line to root.log."""
        with self.root_log.open("a", encoding="utf-8") as handle:
            handle.write(f"{text}\n")

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Record a stage in state.log (start, end, duration) and in the durations."""
        start = time.monotonic()
        self._state(f"Start: {name}")
        status = "failed"
        try:
            yield
            status = "done"
        finally:
            elapsed = time.monotonic() - start
            self.durations[name] = self.durations.get(name, 0.0) + elapsed
            self._state(f"Finish: {name} ({status}, {elapsed:.3f}s)")

    def _state(self, text: str) -> None:
        with self.state_log.open("a", encoding="utf-8") as handle:
            handle.write(f"{_stamp()} {text}\n")

    def sink(self, stage: str, echo: TextIO | None = None, log_path: Path | None = None,
             keep: int = 200) -> StageOutput:
        """An output sink for a command run in stage ``stage`` (logged to root.log or ``log_path``).

        It remembers the last ``keep`` lines (``tail``).
        """
        return StageOutput(self, stage, echo, log_path, keep)


class StageOutput(LineSplitter):
    """Receives a command's output: into root.log, optionally echoed as is, with a progress line."""

    def __init__(self, logs: RunLogs, stage: str, echo: TextIO | None, log_path: Path | None = None,
                 keep: int = 200) -> None:
        super().__init__()
        self.keep = keep
        self.logs = logs
        self.stage = stage
        self.echo = echo
        self.started = time.monotonic()
        self.tail: list[str] = []
        self._handle = (log_path or logs.root_log).open("a", encoding="utf-8")
        self._handle.write(f"--- {_stamp()} {stage}\n")
        self._last_draw = 0.0
        self._last_line = ""
        self._progress = echo is None and logs.console.interactive
        if echo is None and logs.console.verbose:
            self.echo = logs.console.stream
            self._progress = False

    def data(self, chunk: bytes) -> None:
        if self.echo is not None:
            self.echo.flush()
            self.echo.buffer.write(chunk)
            self.echo.buffer.flush()
        super().data(chunk)

    def line(self, text: str) -> None:
        self._handle.write(text + "\n")
        self.tail.append(text)
        if len(self.tail) > self.keep:
            del self.tail[: -self.keep]
        self._last_line = text

    def line_to_log_only(self, text: str) -> None:
        """A line for root.log alone (the command line of a --chroot run)."""
        self._handle.write(text + "\n")

    def tick(self) -> None:
        self._handle.flush()
        if self._progress and time.monotonic() - self._last_draw >= 0.2:
            self._draw()

    def _draw(self) -> None:
        self._last_draw = time.monotonic()
        width = shutil.get_terminal_size((80, 20)).columns
        head = f"[{self.stage} {time.monotonic() - self.started:5.1f}s] "
        text = (head + self._last_line.strip())[: max(width - 1, 10)]
        stream = self.logs.console.stream
        stream.write("\r\033[K" + text)
        stream.flush()

    def close(self) -> None:
        """Finish the progress line and the root.log section."""
        self._handle.close()
        if self._progress:
            stream = self.logs.console.stream
            stream.write("\r\033[K")
            stream.flush()

    def __enter__(self) -> StageOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
