"""Which engine runs, and `ephemeral_server`: start it, yield it, remove it on every exit path.

Why: a Ctrl-C or SIGTERM during a pair run must still stop the server and
remove its folder, so signals are turned into exceptions while a server
runs and cleanup happens in one ExitStack.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from types import FrameType

from rollsafe.engines._base import ENGINE_ENV, EngineKind, Server, _SqlServer
from rollsafe.engines._cockroach import _start_cockroach
from rollsafe.engines._external import _attach_external
from rollsafe.engines._postgres import _start_postgres
from rollsafe.errors import ConfigError


def resolve_engine(engine: str = "auto") -> EngineKind:
    """The engine to use: the argument, else ``ROLLSAFE_ENGINE``; ``auto`` prefers cockroach."""
    source = "--engine"
    choice = engine.strip().lower()
    if choice == "auto":
        from_env = os.environ.get(ENGINE_ENV, "").strip().lower()
        if from_env:
            choice, source = from_env, ENGINE_ENV
    if choice == "auto":
        return "cockroach" if shutil.which("cockroach") else "postgres"
    if choice == "postgres":
        return "postgres"
    if choice == "cockroach":
        return "cockroach"
    if choice == "external":
        return "external"
    raise ConfigError(
        f"unknown engine `{choice}`",
        where=source,
        fix="choose auto, postgres, cockroach or external",
    )


@contextmanager
def _terminate_raises() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while a server runs, so cleanup code gets to run.

    Python's default for SIGTERM is to die on the spot, skipping ``finally``.
    KeyboardInterrupt rather than SystemExit, because pytest stops the whole
    session on it (running fixture teardown) where it would report a
    SystemExit as one failed test and carry on.  Only the main thread can
    install handlers, and a handler someone else installed is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def ephemeral_server(engine: str = "auto", *, tcp: bool = False) -> Iterator[Server]:
    """Start (or attach to) a server for the engine; stop it and remove its folder on exit.

    ``tcp`` also opens a loopback TCP port on PostgreSQL, for tools that
    cannot use a Unix socket.
    """
    kind = resolve_engine(engine)
    with ExitStack() as stack:
        stack.enter_context(_terminate_raises())
        server: _SqlServer
        if kind == "postgres":
            server = _start_postgres(stack, tcp=tcp)
        elif kind == "cockroach":
            server = _start_cockroach(stack)
        else:
            server = _attach_external()
        stack.callback(server.close)
        yield server
