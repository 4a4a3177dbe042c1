"""Which engine runs, and `ephemeral_server`: start it, yield it, remove it on every exit path.

Why: a Ctrl-C or SIGTERM during a pair run must still stop the server and
remove its folder, so signals are turned into exceptions while a server
runs (`rollsafe.engines._processes.Signals`) and cleanup happens in one
ExitStack that no further signal can break off.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from rollsafe.engines._base import ENGINE_ENV, EngineKind, Server, _SqlServer
from rollsafe.engines._cockroach import _start_cockroach
from rollsafe.engines._external import _attach_external
from rollsafe.engines._postgres import _start_postgres
from rollsafe.engines._processes import handled_signals
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
def ephemeral_server(engine: str = "auto", *, tcp: bool = False) -> Iterator[Server]:
    """Start (or attach to) a server for the engine; stop it and remove its folder on exit.

    ``tcp`` also opens a loopback TCP port on PostgreSQL, for tools that
    cannot use a Unix socket.
    """
    kind = resolve_engine(engine)
    with handled_signals() as signals:
        stack = ExitStack()
        try:
            server: _SqlServer
            if kind == "postgres":
                server = _start_postgres(stack, tcp=tcp)
            elif kind == "cockroach":
                server = _start_cockroach(stack)
            else:
                server = _attach_external()
            stack.callback(server.close)
            yield server
        finally:
            # A second Ctrl-C (or SIGTERM) waits until the server and its folder are gone.
            with signals.deferred():
                stack.close()
