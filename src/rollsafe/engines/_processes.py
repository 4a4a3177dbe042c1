"""Processes a throwaway server leaves: signals deferred during cleanup, groups, shared memory.

Why: a server must be gone after every exit path, and the hard ones are
interruptions: Ctrl-C while initdb runs (initdb's own children keep writing
into the folder being removed, and a SIGKILL leaves their POSIX
shared-memory segments in /dev/shm), and a second signal a few milliseconds
after the first, which used to break off the cleanup itself and orphan a
running postgres.  So:

* the first SIGINT/SIGTERM becomes a KeyboardInterrupt; every later one,
  and any one arriving while cleanup or a process spawn runs, is deferred
  (`Signals`), never raised in the middle of a cleanup;
* servers and initdb run in their own process group and are stopped by
  pid with the signal their program expects, then the group is killed;
* the POSIX shared-memory segments a group had mapped are removed once it
  is gone (read from ``/proc/<pid>/maps`` before it is stopped);
* every server folder names its owner (pid and start time): a later run
  removes folders, servers and segments whose owner is gone, which is all
  that can be done after a ``kill -9``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

#: The file in a server folder that names the process owning it.
OWNER_FILE = "rollsafe-owner"


#: How long a stopped process group gets before SIGKILL.
STOP_TIMEOUT = 10.0


_SEGMENT_PREFIX = "/dev/shm/PostgreSQL."


class Signals:
    """SIGINT/SIGTERM handling while a server runs: raise once, defer the rest.

    ``deferred()`` marks a section (a cleanup, a process spawn and the
    registration of its cleanup) that a signal must not break: a signal
    arriving then is remembered and raised as KeyboardInterrupt when the
    outermost section ends, unless one was raised already.
    """

    def __init__(self) -> None:
        self.raised = False
        self.pending: int | None = None
        self.depth = 0
        self.previous: dict[int, Any] = {}

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.raised or self.depth:
            self.pending = self.pending or signum
            return
        self.raised = True
        raise KeyboardInterrupt(f"signal {signum}")

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if not self.depth and self.pending is not None and not self.raised:
            self.raised = True
            raise KeyboardInterrupt(f"signal {self.pending}")


_active: Signals | None = None


@contextmanager
def handled_signals() -> Iterator[Signals]:
    """Install `Signals` for SIGINT and SIGTERM while the block runs (main thread only).

    Python's default for SIGTERM is to die on the spot, skipping every
    ``finally``; KeyboardInterrupt rather than SystemExit, because pytest
    stops the session on it (running fixture teardown).  A SIGINT that is
    ignored (a background job) stays ignored, and handlers someone else
    installed are left alone.  Nested servers share the outer handling.
    """
    global _active
    if _active is not None or threading.current_thread() is not threading.main_thread():
        yield _active or Signals()
        return
    signals = Signals()
    for signum in (signal.SIGTERM, signal.SIGINT):
        current = signal.getsignal(signum)
        default = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
        if current is default or current is None:
            signals.previous[signum] = current
            signal.signal(signum, signals.handle)
    _active = signals
    try:
        yield signals
    finally:
        _active = None
        for number, previous in signals.previous.items():
            signal.signal(number, previous)


@contextmanager
def deferred_signals() -> Iterator[None]:
    """A section no signal may break (a no-op outside `handled_signals`)."""
    if _active is None:
        yield
        return
    with _active.deferred():
        yield


# -- processes -----------------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is field 0), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (tells a reused pid apart)."""
    fields = _stat(pid)
    return fields[19] if fields is not None else None


def group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members


def segments_of(pids: list[int]) -> set[Path]:
    """The PostgreSQL POSIX shared-memory segments the processes have mapped."""
    found: set[Path] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
                start = line.find(_SEGMENT_PREFIX)
                if start >= 0:
                    found.add(Path(line[start:].split(" (deleted)")[0].strip()))
    return found


def _remove_segments(segments: set[Path]) -> None:
    for segment in segments:
        with contextlib.suppress(OSError):
            segment.unlink()


def stop_group(
    process: subprocess.Popen[bytes], sig: signal.Signals, *, whole_group: bool = False
) -> None:
    """Stop a process we started in its own group: ``sig`` to it, then SIGKILL to the group.

    For PostgreSQL ``sig`` is SIGQUIT, what ``pg_ctl stop -m immediate``
    sends (a throwaway server has nothing worth a clean shutdown); for
    initdb SIGTERM to the ``whole_group``, so its bootstrap backend stops
    too (and frees its shared memory itself).  Waits until
    no process of the group is left (children outlive a killed parent),
    then removes the shared memory they had mapped.
    """
    if process.returncode is not None:
        # Reaped before (initdb that finished, a server that died at start): its group id
        # may belong to another program by now, so nothing is signalled in its name.
        return
    with deferred_signals():
        pgid = process.pid
        segments = segments_of(group_members(pgid))
        if whole_group:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
        elif process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(STOP_TIMEOUT)
        deadline = time.monotonic() + STOP_TIMEOUT
        while True:
            members = group_members(pgid)
            if not members:
                break
            segments |= segments_of(members)
            # A server's children outliving it are killed at once; initdb's group gets time.
            if time.monotonic() > deadline or (not whole_group and process.poll() is not None):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
            time.sleep(0.01)
        process.wait()
        _remove_segments(segments)


# -- owners and stale folders --------------------------------------------------------------------


def claim(folder: Path) -> None:
    """Write this process's pid and start time into the folder it owns."""
    pid = os.getpid()
    (folder / OWNER_FILE).write_text(f"{pid} {start_time(pid)}\n")


def _owner_alive(folder: Path) -> bool | None:
    """Whether the process that owns ``folder`` still runs; None when no owner is recorded."""
    try:
        pid_text, started = (folder / OWNER_FILE).read_text().split()
    except (OSError, ValueError):
        return None
    pid = int(pid_text)
    return alive(pid) and start_time(pid) == started


def _processes_in(folder: Path) -> list[int]:
    """Processes whose command line names ``folder`` (its postgres, an initdb and its backends)."""
    marker = str(folder).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if marker in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def remove_stale(parent: Path, prefix: str) -> list[Path]:
    """Remove ``prefix*`` folders in ``parent`` whose owner is gone, with their servers.

    Only folders that name an owner are touched: a folder of a run that is
    still going, or of another program, is never removed.
    """
    removed = []
    for folder in parent.glob(f"{prefix}*"):
        if _owner_alive(folder) is not False:
            continue
        pids = _processes_in(folder)
        segments = segments_of(pids)
        for sig in (signal.SIGQUIT, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + (STOP_TIMEOUT if sig == signal.SIGQUIT else 1.0)
            while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
                time.sleep(0.01)
        _remove_segments(segments)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed
