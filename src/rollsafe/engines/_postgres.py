"""The embedded PostgreSQL engine: initdb and postgres from the system, or the pgserver wheel.

Why: most machines have PostgreSQL's binaries and none of CockroachDB's;
a throwaway cluster on a Unix socket, durability off, files in /dev/shm,
starts in well under a second.  initdb refuses root, so as root the
server runs as an existing unprivileged account.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from psycopg.conninfo import make_conninfo

from rollsafe.engines._base import (
    START_TIMEOUT,
    EngineKind,
    _free_port,
    _remove,
    _SqlServer,
    _stop,
    _tail,
)
from rollsafe.engines._processes import claim, deferred_signals, remove_stale, stop_group
from rollsafe.errors import EngineUnavailable

#: Accounts tried, in order, to run PostgreSQL when we are root.
SERVER_ACCOUNTS = ("postgres", "nobody")


#: Longest Unix socket path (``sun_path`` is 108 bytes with the terminating NUL).
SOCKET_PATH_MAX = 107


#: Memory-backed scratch space, used for the server's files when it has room.
SHM = "/dev/shm"


SHM_MIN_FREE = 1 << 30


#: Server folders start with this; a later run removes those whose owner is gone.
FOLDER_PREFIX = "rollsafe-pg-"


INSTALL_POSTGRES = "apt-get install postgresql, or pip install 'rollsafe[pgserver]'"


class PostgresServer(_SqlServer):
    """A PostgreSQL server in a temporary folder, reached over its Unix socket."""

    kind: EngineKind = "postgres"

    def __init__(
        self,
        *,
        folder: Path,
        process: subprocess.Popen[bytes],
        port: int,
        account: str,
        bindir: Path | None = None,
    ) -> None:
        super().__init__(
            make_conninfo(host=str(folder), port=port, user="postgres", dbname="postgres"),
            flavor="postgres",
        )
        self.folder = folder
        self.process = process
        self.port = port
        self.account = account
        self.client_bindir = bindir

    @property
    def pid(self) -> int:
        """The postmaster's process id."""
        return self.process.pid


def _version_key(path: Path) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", path.name)
    return tuple(int(n) for n in numbers) or (0,)


def find_postgres_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``postgres``: PATH, distribution folders, pgserver."""
    initdb = shutil.which("initdb")
    if initdb:
        folder = Path(initdb).resolve().parent
        if (folder / "postgres").is_file():
            return folder
        postgres = shutil.which("postgres")
        if postgres:
            return Path(postgres).resolve().parent
    candidates = [
        *Path("/usr/lib/postgresql").glob("*/bin"),
        *(p / "bin" for p in Path("/usr").glob("pgsql-*")),
    ]
    for folder in sorted(candidates, key=lambda p: _version_key(p.parent), reverse=True):
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (folder / "initdb").is_file():
            return folder
    return None


def _server_account() -> pwd.struct_passwd | None:
    """The unprivileged account to run PostgreSQL as when we are root; None otherwise."""
    if os.geteuid() != 0:
        return None
    for name in SERVER_ACCOUNTS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise EngineUnavailable(
        "running as root, and neither a `postgres` nor a `nobody` account exists "
        "to run PostgreSQL (initdb refuses root)",
        fix="run as a normal user, or install PostgreSQL (which creates `postgres`)",
    )


def _in_memory_folder() -> Path | None:
    """``/dev/shm`` when it is a writable tmpfs with room to spare, else None."""
    shm = Path(SHM)
    try:
        stats = os.statvfs(shm)
    except OSError:
        return None
    if not os.access(shm, os.W_OK | os.X_OK) or stats.f_bavail * stats.f_frsize < SHM_MIN_FREE:
        return None
    return shm


def temp_parent(account: pwd.struct_passwd | None = None) -> Path:
    """Where the server's folder goes: in memory when possible, reachable, socket-short.

    A throwaway cluster's files need no disk: on tmpfs a template clone of a
    database with hundreds of tables is a memory copy (tens of milliseconds)
    instead of hundreds of file creations on disk (a second or more).
    """
    parent = _in_memory_folder() or Path(tempfile.gettempdir())
    too_long = len(str(parent)) + len("/rollsafe-pg-XXXXXXXX/.s.PGSQL.65535") > SOCKET_PATH_MAX
    unreachable = account is not None and any(
        not (p.stat().st_mode & 0o001) for p in (parent, *parent.parents)
    )
    return Path("/tmp") if too_long or unreachable else parent


def _as_account(account: pwd.struct_passwd | None, folder: Path) -> dict[str, Any]:
    """subprocess arguments that run a command as ``account`` (no supplementary groups)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    if account is None:
        return {"env": env}
    env.update(HOME=str(folder), USER=account.pw_name, LOGNAME=account.pw_name)
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": [], "env": env}


def _start_postgres(stack: ExitStack, *, tcp: bool) -> PostgresServer:
    bindir = find_postgres_bindir()
    if bindir is None:
        raise EngineUnavailable(
            "no PostgreSQL server binaries (initdb, postgres) on PATH, in "
            "/usr/lib/postgresql/<N>/bin or from the pgserver wheel",
            fix=INSTALL_POSTGRES,
        )
    account = _server_account()
    parent = temp_parent(account)
    remove_stale(parent, FOLDER_PREFIX)
    with deferred_signals():
        folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=parent))
        stack.callback(_remove, folder)
    claim(folder)
    if account is not None:
        os.chown(folder, account.pw_uid, account.pw_gid)
    running = _as_account(account, folder)
    data = folder / "data"
    with deferred_signals():
        initdb = subprocess.Popen(
            [
                str(bindir / "initdb"),
                *("-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"),
                *("--locale=C", "--no-sync"),
            ],
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            **running,
        )
        # Removed on an interruption with its bootstrap backend, before the folder is.
        stack.callback(stop_group, initdb, signal.SIGTERM, whole_group=True)
    stdout, stderr = initdb.communicate()
    if initdb.returncode != 0:
        last = (stderr or stdout).decode(errors="replace").strip().splitlines()
        raise EngineUnavailable(
            f"initdb failed: {last[-1] if last else f'exit {initdb.returncode}'}",
            where=str(bindir),
            fix=INSTALL_POSTGRES,
        )
    port = _free_port() if tcp else 5432
    settings = {
        "listen_addresses": "127.0.0.1" if tcp else "",
        "unix_socket_directories": str(folder),
        "port": str(port),
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "wal_level": "minimal",
        "max_wal_senders": "0",
        "autovacuum": "off",
        "max_connections": "200",
        # Segments as files in the folder, not in /dev/shm: they go with the folder
        # even when the server could not remove them (a kill -9 of this process).
        "dynamic_shared_memory_type": "mmap",
    }
    log = folder / "postgres.log"
    with log.open("wb") as out, deferred_signals():
        process = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(data)]
            + [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")],
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **running,
        )
        stack.callback(_stop, process, signal.SIGQUIT)
    _wait_postgres(process, data / "postmaster.pid", log)
    name = account.pw_name if account else pwd.getpwuid(os.geteuid()).pw_name
    return PostgresServer(folder=folder, process=process, port=port, account=name, bindir=bindir)


def _wait_postgres(process: subprocess.Popen[bytes], pid_file: Path, log: Path) -> None:
    """Ready when postmaster.pid says so (PostgreSQL 10+ writes a status line)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EngineUnavailable(
                f"postgres exited with code {process.returncode}: {_tail(log)}",
                fix=INSTALL_POSTGRES,
            )
        with contextlib.suppress(OSError):
            lines = pid_file.read_text().splitlines()
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return
        time.sleep(0.01)
    raise EngineUnavailable(
        f"postgres did not become ready in {START_TIMEOUT:.0f} s: {_tail(log)}",
        fix="check the log above",
    )
