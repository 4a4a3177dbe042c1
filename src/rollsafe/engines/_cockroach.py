"""The CockroachDB engine: one insecure in-memory node on loopback and random ports.

Why: CockroachDB is the production database of the projects this tool
serves; when its binary is on PATH the pair tests run on the real thing.

No binary can be installed where this project is tested, so every flag and
statement here is written to CockroachDB's documentation and source, cited
next to it; `start_command` and `check_version` are pure so the tests pin
them without a server.  Supported versions: v22.1 and newer (`MIN_VERSION`).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from rollsafe._db import connect, parse_target
from rollsafe.engines._base import (
    START_TIMEOUT,
    EngineKind,
    Snapshot,
    _remove,
    _SqlServer,
    _stop,
    _tail,
)
from rollsafe.errors import EngineUnavailable


class CockroachServer(_SqlServer):
    """A single in-memory CockroachDB node on loopback."""

    kind: EngineKind = "cockroach"

    def __init__(self, *, url: str, folder: Path, process: subprocess.Popen[bytes]) -> None:
        super().__init__(url, flavor="cockroach")
        self.folder = folder
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid

    def _drop_backup(self, snapshot: Snapshot) -> None:
        assert snapshot.location is not None
        relative = snapshot.location.removeprefix("nodelocal://1/")
        shutil.rmtree(self.folder / "extern" / relative, ignore_errors=True)


#: The oldest CockroachDB this engine runs on: clones are ``RESTORE DATABASE ... WITH
#: new_db_name``, which restores a database that still exists under another name from
#: v22.1 on (cockroachdb/docs ``src/current/v22.1/restore.md``, "new in v22.1"; the
#: engine's ``BACKUP ... INTO`` / ``RESTORE ... FROM LATEST IN`` collection syntax is
#: older).
MIN_VERSION = (22, 1)

_VERSION = re.compile(r"\bv(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(report: str) -> tuple[int, int, int] | None:
    """``(22, 1, 7)`` from a ``crdb_version`` report such as ``CockroachDB CCL v22.1.7 (...)``.

    The same pattern psycopg's ``CrdbConnectionInfo.parse_crdb_version`` uses.
    """
    match = _VERSION.search(report)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def check_version(report: str | None, *, where: str) -> None:
    """One clear line when the server is older than `MIN_VERSION` (or says no version)."""
    version = parse_version(report or "")
    if version is not None and version[:2] >= MIN_VERSION:
        return
    shown = f"v{version[0]}.{version[1]}.{version[2]}" if version else f"`{report or 'no version'}`"
    raise EngineUnavailable(
        f"CockroachDB {shown} is too old: rollsafe needs v{MIN_VERSION[0]}.{MIN_VERSION[1]} or "
        "newer (it clones databases with RESTORE ... WITH new_db_name)",
        where=where,
        fix="install CockroachDB v22.1 or newer, or set ROLLSAFE_ENGINE=postgres",
    )


def start_command(binary: str, folder: Path) -> list[str]:
    """The ``cockroach start-single-node`` argument list, flag by flag with its source.

    Flags: cockroachdb/docs ``src/current/v22.1/cockroach-start.md`` (shared by
    ``start-single-node``).  ``--temp-dir`` is left out on purpose: with an
    in-memory first store and no ``--temp-dir``, temporary storage stays in
    memory too (``TempStorageConfigFromEnv`` in ``pkg/base/config.go``:
    ``inMem := parentDir == "" && useStore.InMemory``); giving the flag would
    move it to disk.  ``--external-io-dir`` is needed: its default is the
    ``extern`` folder of the first store, which an in-memory store does not
    have, and ``BACKUP ... INTO 'nodelocal://1/...'`` writes there.
    """
    return [
        binary,
        "start-single-node",
        # No certificates: a throwaway node on loopback.
        "--insecure",
        # `--store=type=mem,size=...`: an in-memory store of that size.
        "--store=type=mem,size=1GiB",
        # Port 0: an unused port, reported through --listening-url-file.
        "--listen-addr=127.0.0.1:0",
        "--http-addr=127.0.0.1:0",
        f"--listening-url-file={folder / 'listen-url'}",
        f"--external-io-dir={folder / 'extern'}",
        # The docs' advice for local development nodes: small caches.
        "--cache=128MiB",
        "--max-sql-memory=256MiB",
    ]


def server_version_report(dsn: str) -> str | None:
    """The server's ``crdb_version`` report, sent at connection start (no query).

    ``statusReportParams`` in ``pkg/sql/pgwire/conn.go`` lists ``crdb_version``
    among the parameters every CockroachDB connection reports; PostgreSQL
    reports no such parameter (None).
    """
    with connect(parse_target(dsn), application_name="rollsafe") as conn:
        report = conn.pgconn.parameter_status(b"crdb_version")
    return report.decode() if report else None


def _start_cockroach(stack: ExitStack) -> CockroachServer:
    binary = shutil.which("cockroach")
    if binary is None:
        raise EngineUnavailable(
            "no `cockroach` binary on PATH",
            fix="install CockroachDB v22.1 or newer, or set ROLLSAFE_ENGINE=postgres",
        )
    folder = Path(tempfile.mkdtemp(prefix="rollsafe-crdb-"))
    stack.callback(_remove, folder)
    (folder / "extern").mkdir()
    url_file = folder / "listen-url"
    log = folder / "cockroach.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            start_command(binary, folder),
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # An in-memory store has nothing to shut down cleanly.
    stack.callback(_stop, process, signal.SIGKILL)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EngineUnavailable(
                f"cockroach exited with code {process.returncode}: {_tail(log)}",
                fix="run `cockroach version` to check the binary",
            )
        with contextlib.suppress(OSError):
            text = url_file.read_text()
            if text.endswith("\n"):
                url = text.strip()
                check_version(server_version_report(url), where=f"`{binary}`")
                return CockroachServer(url=url, folder=folder, process=process)
        time.sleep(0.02)
    raise EngineUnavailable(
        f"cockroach did not write its URL in {START_TIMEOUT:.0f} s: {_tail(log)}",
        fix="check the log above",
    )
