"""Commands of the operator's own (sbuild's pre/post-build commands), run as the user who runs deb-mock.

In root mode deb-mock's process is that user. In rootless mode it has moved
into its user namespace, where the caller is "root": a command run from there
would see uid 0, and ssh, dput or gpg would look for root's files. So before
the namespace is entered, :func:`start_runner` forks a small helper that
stays outside, as the real user, and runs such commands on request (one JSON
line each way, over pipes that only these two processes hold). It ends when
deb-mock closes the pipe or dies.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping

#: (request write end, reply read end) once a runner outside the user namespace is up
_RUNNER: tuple[int, int] | None = None
#: what only the run inside its namespace may see (userns.INSIDE_ENV): a deb-mock started by the
#: operator's command must map its own namespace again
_INSIDE_ONLY = ("DEB_MOCK_ROOTLESS",)


def start_runner() -> None:
    """Fork the helper that stays in the caller's namespace (call just before unsharing)."""
    global _RUNNER
    request_read, request_write = os.pipe()
    reply_read, reply_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:  # the helper never returns into deb-mock's own code
            os.close(request_write)
            os.close(reply_read)
            _serve(request_read, reply_write)
        finally:
            os._exit(0)
    os.close(request_read)
    os.close(reply_write)
    _RUNNER = (request_write, reply_read)


def _serve(requests: int, replies: int) -> None:
    """The helper's loop: run each requested command, answer its exit status; exit at end of input."""
    with os.fdopen(requests, "rb") as incoming, os.fdopen(replies, "wb", buffering=0) as outgoing:
        for line in incoming:
            request = json.loads(line)
            status = _run(request["argv"], request["env"], request["cwd"], request["log"], request["interactive"])
            outgoing.write(f"{status}\n".encode())
    os._exit(0)


def _run(argv: list[str], env: Mapping[str, str], cwd: str, log: str | None, interactive: bool) -> int:
    try:
        if interactive or log is None:
            return subprocess.run(argv, env=dict(env), cwd=cwd, check=False).returncode
        with open(log, "a", encoding="utf-8") as handle:
            return subprocess.run(argv, env=dict(env), cwd=cwd, stdout=handle, stderr=handle,
                                  stdin=subprocess.DEVNULL, check=False).returncode
    except OSError as exc:
        if log is not None:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(f"deb-mock: cannot run {argv[0]}: {exc.strerror}\n")
        return 127


def run(argv: list[str], env: Mapping[str, str], cwd: str, log: str | None, interactive: bool = False) -> int:
    """Run ``argv`` as the caller: through the helper outside the user namespace if there is one."""
    if _RUNNER is None:
        return _run(argv, env, cwd, log, interactive)
    request_write, reply_read = _RUNNER
    outside = {key: value for key, value in env.items() if key not in _INSIDE_ONLY}
    message = json.dumps({"argv": argv, "env": outside, "cwd": cwd, "log": log, "interactive": interactive})
    os.write(request_write, message.encode() + b"\n")
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = os.read(reply_read, 64)
        if not chunk:
            return 127  # the helper is gone
        reply += chunk
    return int(reply)
