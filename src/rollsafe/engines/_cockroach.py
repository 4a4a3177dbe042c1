"""The CockroachDB engine: one insecure in-memory node on loopback and random ports.

Why: CockroachDB is the production database of the projects this tool
serves; when its binary is on PATH the pair tests run on the real thing.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

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


def _start_cockroach(stack: ExitStack) -> CockroachServer:
    binary = shutil.which("cockroach")
    if binary is None:
        raise EngineUnavailable(
            "no `cockroach` binary on PATH",
            fix="install CockroachDB, or set ROLLSAFE_ENGINE=postgres",
        )
    folder = Path(tempfile.mkdtemp(prefix="rollsafe-crdb-"))
    stack.callback(_remove, folder)
    (folder / "extern").mkdir()
    (folder / "tmp").mkdir()
    url_file = folder / "listen-url"
    log = folder / "cockroach.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                "start-single-node",
                "--insecure",
                "--store=type=mem,size=1GiB",
                "--listen-addr=127.0.0.1:0",
                "--http-addr=127.0.0.1:0",
                f"--listening-url-file={url_file}",
                f"--external-io-dir={folder / 'extern'}",
                f"--temp-dir={folder / 'tmp'}",
                "--cache=128MiB",
                "--max-sql-memory=256MiB",
            ],
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
                return CockroachServer(url=text.strip(), folder=folder, process=process)
        time.sleep(0.02)
    raise EngineUnavailable(
        f"cockroach did not write its URL in {START_TIMEOUT:.0f} s: {_tail(log)}",
        fix="check the log above",
    )
