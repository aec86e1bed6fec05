"""An interactive session's terminal: a new pty whose other end deb-mock relays to the caller's.

The command in the root never gets the caller's terminal: its controlling
terminal is the slave of a pty made for the run, and deb-mock copies bytes
between the caller's terminal (in raw mode, so Ctrl-C and friends reach the
command as keystrokes) and the pty's master. So nothing in the root can push
input into the operator's shell (TIOCSTI) or read keystrokes after the run.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import signal
import struct
import termios
import tty
from collections.abc import Callable, Iterator

_WINSIZE = struct.Struct("HHHH")


def _copy_window_size(source: int, target: int) -> None:
    with contextlib.suppress(OSError):
        size = fcntl.ioctl(source, termios.TIOCGWINSZ, _WINSIZE.pack(0, 0, 0, 0))
        fcntl.ioctl(target, termios.TIOCSWINSZ, size)


@contextlib.contextmanager
def relayed_pty(caller: int = 0) -> Iterator[tuple[int, Callable[[Callable[[], bool]], None]]]:
    """A pty for the command: yields its slave fd and ``relay(finished)``, which copies until ``finished()``.

    The caller's terminal is in raw mode while the block runs and restored after it.
    """
    master, slave = os.openpty()
    _copy_window_size(caller, master)
    saved = termios.tcgetattr(caller)
    previous = signal.signal(signal.SIGWINCH, lambda _signum, _frame: _copy_window_size(caller, master))

    def relay(finished: Callable[[], bool]) -> None:
        os.close(slave)
        output = 1
        inputs = [caller, master]
        while True:
            try:
                ready, _, _ = select.select(inputs, [], [], 0.2)
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError as exc:  # EIO: every slave end is closed, the command is gone
                    if exc.errno != errno.EIO:
                        raise
                    data = b""
                if not data:
                    return
                with contextlib.suppress(OSError):  # the caller's terminal may be gone: output is dropped
                    os.write(output, data)
            if caller in ready:
                try:
                    data = os.read(caller, 65536)
                except OSError:  # the caller's terminal hung up
                    data = b""
                if data:
                    os.write(master, data)
                else:  # no more input: stop reading it, and give the command an end of file (Ctrl-D)
                    inputs.remove(caller)
                    os.write(master, b"\x04")
            if not ready and finished():
                return

    try:
        tty.setraw(caller, termios.TCSANOW)  # not TCSAFLUSH: keystrokes typed ahead are kept
        yield slave, relay
    finally:
        with contextlib.suppress(termios.error):  # a terminal that hung up has no modes to restore
            termios.tcsetattr(caller, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, previous)
        os.close(master)
        with contextlib.suppress(OSError):
            os.close(slave)
