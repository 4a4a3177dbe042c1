"""Release records: ``releases/<CL>.toml`` says which CL was deployed and what it shipped.

Why: the table should list what actually reached production, not every
commit, and a migration edited after it shipped must be detectable later
(Flyway keeps checksums for the same reason).  A record holds the CL, its
commit, the landing date, the schema version and git's blob id of every
migration file at that commit.  Records are immutable: writing refuses to
replace one, and loading validates every field so a hand-edited record fails
with its file and key named.

Records are read from the work tree, not from history: the commit that adds a
record must also carry the table regenerated with it, so ``--check`` passes
in that very commit.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from rollsafe import _git
from rollsafe._files import write_atomic
from rollsafe.errors import ReleaseError, UnknownCLError

if TYPE_CHECKING:
    from rollsafe.config import Config
    from rollsafe.history._model import History

KEYS = ("cl", "commit", "date", "schema", "migrations")
HEADER = (
    "# Release record written by `rollsafe release`: this CL was deployed.\n"
    "# Do not edit: lint compares the migration blob ids with history.\n"
)


@dataclass(frozen=True)
class ReleaseRecord:
    """What one deployed CL shipped: commit, landing date, schema and migration blob ids."""

    cl: str
    commit: str
    date: str
    schema: int | None
    migrations: Mapping[str, str] = field(default_factory=dict)
    path: str = ""


def file_name(cl: str) -> str:
    """``1565.toml``; a tag such as ``release/1.2`` becomes ``release%2F1.2.toml``."""
    return quote(cl, safe="") + ".toml"


def render_record(record: ReleaseRecord) -> str:
    """The TOML text of a record, keys in a fixed order (deterministic bytes)."""
    lines = [
        HEADER.rstrip("\n"),
        f"cl = {_string(record.cl)}",
        f"commit = {_string(record.commit)}",
        f"date = {_string(record.date)}",
    ]
    if record.schema is not None:  # TOML has no null: a missing key means "no schema"
        lines.append(f"schema = {record.schema}")
    lines += ["", "[migrations]"]
    lines += [
        f"{_string(path)} = {_string(blob)}" for path, blob in sorted(record.migrations.items())
    ]
    return "\n".join(lines) + "\n"


def _string(text: str) -> str:
    """A TOML basic string (JSON's escapes are a subset TOML accepts)."""
    return json.dumps(text, ensure_ascii=False)


def record_of(config: Config, history: History, cl: str) -> ReleaseRecord:
    """The record CL ``cl`` of ``history`` would get (raises `UnknownCLError`)."""
    version = history.find(cl)
    return ReleaseRecord(
        cl=version.cl,
        commit=version.commit,
        date=version.date.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        schema=version.schema,
        migrations=dict(version.migrations),
        path=f"{config.releases.rstrip('/')}/{file_name(version.cl)}",
    )


def write_record(config: Config, history: History, cl: str) -> Path:
    """Write ``releases/<CL>.toml`` for ``cl``; refuses to replace an existing record."""
    record = record_of(config, history, cl)
    target = config.path(record.path)
    _git.require_work_tree(config.repo, writing=record.path)
    try:
        write_atomic(target, render_record(record), exclusive=True)
    except FileExistsError:
        raise ReleaseError(
            f"a release record for CL {record.cl} already exists",
            where=record.path,
            fix="records are never rewritten: they state what shipped; delete the file first "
            "only if that release never happened",
        ) from None
    except OSError as exc:
        raise ReleaseError(
            f"cannot write: {exc.strerror}", where=record.path, fix="check the folder's permissions"
        ) from exc
    return target


def parse_record(text: str, *, path: str) -> ReleaseRecord:
    """Validate one record's text; every problem names the file and the key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ReleaseError(
            f"not valid TOML: {exc}", where=path, fix="restore the file from git history"
        ) from exc
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise ReleaseError(
            f"unknown key `{unknown[0]}`", where=path, fix=f"a record has only {', '.join(KEYS)}"
        )
    for key in ("cl", "commit", "date"):
        value = data.get(key)
        if not isinstance(value, str) or not value:
            raise ReleaseError(
                f"`{key}` is missing or not a non-empty string",
                where=path,
                fix="restore the file from git history, or rewrite it with `rollsafe release`",
            )
    commit = data["commit"]
    if not _is_object_id(commit):
        raise ReleaseError(
            f"`commit` is not a full commit id: {commit!r}",
            where=path,
            fix="write the full 40-character id (as `rollsafe release` does)",
        )
    try:
        stamp = datetime.fromisoformat(data["date"])
    except ValueError:
        stamp = None
    if stamp is None or stamp.tzinfo is None:
        raise ReleaseError(
            f"`date` is not an ISO 8601 time with a zone: {data['date']!r}",
            where=path,
            fix="write it like 2024-01-01T05:00:00Z",
        )
    schema = data.get("schema")
    if schema is not None and (
        isinstance(schema, bool) or not isinstance(schema, int) or schema < 0
    ):
        raise ReleaseError(
            f"`schema` is not a migration version: {schema!r}",
            where=path,
            fix="a non-negative integer, or no `schema` key when the CL had no migration",
        )
    migrations = data.get("migrations", {})
    if not isinstance(migrations, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and _is_object_id(v)
        for k, v in migrations.items()
    ):
        raise ReleaseError(
            "`[migrations]` must map file paths to full blob ids",
            where=path,
            fix="restore the file from git history",
        )
    cl = data["cl"]
    stem = Path(path).name.removesuffix(".toml")
    if unquote(stem) != cl:
        raise ReleaseError(
            f"the file name says CL {unquote(stem)} but the record says CL {cl}",
            where=path,
            fix=f"name the file {file_name(cl)}",
        )
    return ReleaseRecord(
        cl=cl,
        commit=commit,
        date=data["date"],
        schema=schema,
        migrations=dict(migrations),
        path=path,
    )


def _is_object_id(text: str) -> bool:
    """A full git object id: 40 (SHA-1) or 64 (SHA-256) lower-case hex digits."""
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


def load_records(config: Config, history: History | None = None) -> tuple[ReleaseRecord, ...]:
    """Every record of the releases folder, validated, oldest first.

    With ``history`` each record must name a CL of the branch with the same
    commit (a mismatch means history was rewritten or the record edited), and
    records are sorted by landing order; without it, by date then CL.
    """
    folder = config.path(config.releases)
    if not folder.is_dir():
        return ()
    records: list[ReleaseRecord] = []
    for entry in sorted(folder.iterdir()):
        if not entry.is_file() or entry.suffix != ".toml" or entry.name.startswith("."):
            continue
        shown = f"{config.releases.rstrip('/')}/{entry.name}"
        try:
            text = entry.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ReleaseError(
                f"cannot read: {exc}", where=shown, fix="restore the file from git history"
            ) from exc
        records.append(parse_record(text, path=shown))
    if history is None:
        return tuple(sorted(records, key=lambda r: (r.date, r.cl)))
    positions: dict[str, int] = {}
    for record in records:
        try:
            version = history.find(record.cl)
        except UnknownCLError:
            raise ReleaseError(
                f"CL {record.cl} is not a code version of branch {history.branch}",
                where=record.path,
                fix="check --branch and --cl-strategy, or delete the record of a release that "
                "was never made from this branch",
            ) from None
        if version.commit != record.commit:
            raise ReleaseError(
                f"the record says CL {record.cl} is commit {record.commit[:12]}, "
                f"history says {version.commit[:12]}",
                where=record.path,
                fix="history was rewritten or the record edited; restore the record from git "
                "history or investigate the branch",
            )
        positions[record.cl] = version.position
    return tuple(sorted(records, key=lambda r: positions[r.cl]))
