"""Standard output that may go away: a closed pipe is a quiet exit, a full disk one line.

Why: ``rollsafe upgrade-pairs --list | head -1`` closes the pipe after one
line, and ``--format json > /dev/full`` cannot write at all; either used to
end in a Python traceback (or in "Exception ignored" at exit).  Every write
to stdout goes through `_Guarded`, which turns an `OSError` into
`OutputFailed`, so it is told apart from every other I/O error.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO, cast

#: Exit status for a closed pipe: what a shell reports for a tool killed by SIGPIPE.
EXIT_BROKEN_PIPE = 128 + 13


#: Exit status for any other failure to write the output.
EXIT_OUTPUT_FAILED = 1


class OutputFailed(Exception):
    """Standard output could not be written (the reader left, or the disk is full)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror or str(error))
        self.error = error


class _Guarded:
    """A stream whose write and flush raise `OutputFailed` instead of `OSError`."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise OutputFailed(exc) from exc

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise OutputFailed(exc) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _silence(stream: TextIO) -> None:
    """Point the stream's file descriptor at /dev/null so the exit-time flush cannot fail."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)


def guard_output(run: Callable[[], int]) -> int:
    """Run a command with stdout guarded: its exit code, 141 on a closed pipe, 1 on a failed write.

    ``SystemExit`` (argparse's ``--help`` and usage errors) passes through
    after the output is flushed, so its text is checked too.
    """
    stream = sys.stdout
    sys.stdout = cast(TextIO, _Guarded(stream))
    try:
        try:
            code = run()
        except SystemExit:
            sys.stdout.flush()
            raise
        sys.stdout.flush()
        return code
    except OutputFailed as failed:
        _silence(stream)
        if failed.error.errno == errno.EPIPE:
            return EXIT_BROKEN_PIPE
        print(f"rollsafe: cannot write the output: {failed}", file=sys.stderr)
        return EXIT_OUTPUT_FAILED
    finally:
        sys.stdout = stream
