"""Drive a booted image through its serial console (deb-mock --bootc-run's stdin and stdout).

A small expect: wait for a pattern, type a line, run a shell command and
read its output between two markers that only the shell's expansion can
produce (the echo of the typed command never matches them).
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import time

from deb_mock.plugins.bootc.qemu import terminal_replies


class SerialConsole:
    """The serial console of a qemu started by ``deb-mock --bootc-run`` with pipes."""

    def __init__(self, process: subprocess.Popen[bytes], transcript: list[str]) -> None:
        self.process = process
        self.buffer = b""
        self.transcript = transcript
        self._count = 0

    def expect(self, pattern: bytes, timeout: float) -> re.Match[bytes]:
        """Wait until ``pattern`` appears in the output; consume everything up to its end."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            match = regex.search(self.buffer)
            if match:
                self.buffer = self.buffer[match.end():]
                return match
            left = deadline - time.monotonic()
            if left <= 0 or self.process.poll() is not None:
                tail = self.buffer[-1500:].decode(errors="replace")
                raise AssertionError(f"serial console: {pattern!r} not seen within {timeout:.0f}s; last output:\n"
                                     f"{tail}")
            ready, _, _ = select.select([self.process.stdout], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self.process.stdout.fileno(), 65536)
                self.transcript.append(chunk.decode(errors="replace"))
                reply = terminal_replies(self.buffer, chunk)  # answered as a terminal would, at once
                if reply and self.process.stdin is not None:
                    self.process.stdin.write(reply)
                    self.process.stdin.flush()
                self.buffer += chunk

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def login(self, user: str, password: str, timeout: float = 300) -> None:
        self.expect(rb"login: ", timeout)
        time.sleep(1)
        self.send(user)
        self.expect(rb"Password: ", 60)
        self.send(password)
        self.expect(rb"[#$] ", 120)
        self.send("export TERM=dumb; stty -echo cols 500; unset PROMPT_COMMAND; dmesg -n 1")
        time.sleep(1)

    def run(self, command: str, timeout: float = 300) -> tuple[int, str]:
        """Run ``command`` in the logged-in shell; return its exit status and output."""
        self._count += 1
        tag = f"DM{self._count}"
        self.send(f"echo {tag}''-BEGIN; {command}; echo {tag}-END-$?''-X")
        self.expect(f"{tag}-BEGIN\r?\n".encode(), timeout)
        match = self.expect(rb"(?s)(.*?)" + f"{tag}-END-(\\d+)-X".encode(), timeout)
        return int(match.group(2)), match.group(1).decode(errors="replace").replace("\r", "").strip()

    def check(self, command: str, timeout: float = 300) -> str:
        status, output = self.run(command, timeout)
        assert status == 0, f"in the image: '{command}' exited {status}:\n{output}"
        return output
