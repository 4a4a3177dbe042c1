"""The migrations folder: golang-migrate file names, pairs and rollsafe directives.

Why: everything else (rows, lint, the migrator, the pair tests) reasons about
migrations by version, so the folder is parsed once, strictly, and every
malformed input is an error naming the file and line.  The parser works on a
plain ``{file name: text}`` mapping so the same rules apply to a folder on
disk and to a tree read from git history.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rollsafe.errors import CatalogueError

Compat = Literal["live", "offline"]
#: Whether code built for a migration's schema keeps working once the migration is undone.
Rollback = Literal["live", "offline"]
Direction = Literal["up", "down"]

#: golang-migrate's file name (``source/parse.go``: ``^([0-9]+)_(.*)\.(down|up)\.(.*)$``):
#: any title, any extension.  ``\Z``, not ``$``: Go's ``$`` never matches before a final newline.
FILE_NAME = re.compile(
    r"^(?P<version>[0-9]+)_(?P<title>.*)\.(?P<direction>down|up)\.(?P<extension>.*)\Z"
)
#: PostgreSQL's bigint, where golang-migrate stores the version.
MAX_VERSION = 2**63 - 1
#: golang-migrate parses the version as a uint64 and skips a file whose version overflows it.
_MAX_UINT64 = 2**64 - 1
#: A directive line: ``-- key: value`` with a lower-case key right before the colon
#: (not a URL: ``-- https://tracker/123`` is prose).
DIRECTIVE = re.compile(r"^--\s*(?P<key>[a-z][a-z-]*):(?!//)\s*(?P<value>.*?)\s*$")
#: Rule ids in ``-- lint: ignore``: kebab-case words.
RULE_ID = re.compile(r"^[a-z][a-z0-9-]*$")
KNOWN_DIRECTIVES = ("compat", "rollback", "note", "lint", "transaction")
#: ``-- transaction:`` values: ``none`` runs the file outside a transaction block as
#: golang-migrate does (one query); ``per-statement`` also splits it (rollsafe only).
TRANSACTION_MODES = ("none", "per-statement")


@dataclass(frozen=True)
class Directives:
    """What the top comment block of an up file declares.

    ``line`` fields keep where each directive stood so lint and errors can
    point at it.
    """

    compat: Compat | None = None
    compat_line: int | None = None
    note: str | None = None
    lint_ignore: frozenset[str] = frozenset()
    lint_ignore_line: int | None = None
    #: ``-- transaction: none``: run outside a transaction block (golang-migrate's
    #: dirty-first protocol), for statements PostgreSQL refuses inside one.
    no_transaction: bool = False
    #: ``-- rollback: live|offline``: whether code built for this schema keeps working
    #: after the migration is undone (None: inferred by lint and the pair tests).
    rollback: Rollback | None = None
    rollback_line: int | None = None
    #: ``-- transaction: per-statement``: also send the statements one by one, which
    #: golang-migrate never does (it sends the whole file as one query).
    per_statement: bool = False


@dataclass(frozen=True)
class Migration:
    """One migration version: its up file, its optional down file, and directives.

    Paths are repository-relative with ``/`` separators (``migrations/1_a.up.sql``).
    """

    version: int
    title: str
    up_path: str
    up_sql: str
    down_path: str | None = None
    down_sql: str | None = None
    directives: Directives = field(default_factory=Directives)

    @property
    def reversible(self) -> bool:
        """A migration without a down file cannot be undone (golang-migrate allows that)."""
        return self.down_path is not None

    @property
    def name(self) -> str:
        """``<version>_<title>``, the way golang-migrate names it in logs."""
        return f"{self.version}_{self.title}"


@dataclass(frozen=True)
class CatalogueWarning:
    """A file golang-migrate reads differently from what its name suggests, but not an error.

    Why: golang-migrate skips names its parser does not match and runs up and
    down files whose titles differ; rollsafe must read the folder the same
    way, yet a misnamed file that never runs is worth a lint warning.
    """

    file: str
    what: str
    fix: str


@dataclass(frozen=True)
class Catalogue:
    """All migrations of one folder, sorted by version, and what lint should warn about."""

    folder: str
    migrations: tuple[Migration, ...] = ()
    warnings: tuple[CatalogueWarning, ...] = ()

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(m.version for m in self.migrations)

    @property
    def head(self) -> int | None:
        """The newest version, or None for an empty folder (version 0 is a real version)."""
        return self.migrations[-1].version if self.migrations else None

    def get(self, version: int) -> Migration | None:
        for migration in self.migrations:
            if migration.version == version:
                return migration
        return None

    def __contains__(self, version: object) -> bool:
        return isinstance(version, int) and self.get(version) is not None

    def __iter__(self) -> Iterator[Migration]:
        return iter(self.migrations)

    def __len__(self) -> int:
        return len(self.migrations)


@dataclass(frozen=True)
class MigrationFile:
    """A parsed file name: which version, title and direction it is."""

    version: int
    title: str
    direction: Direction


def is_migration_name(name: str) -> bool:
    """Whether golang-migrate's file source reads ``name`` (a base name) as a migration.

    Its version must also fit a uint64, or golang-migrate skips the file.
    """
    match = FILE_NAME.match(name)
    return match is not None and int(match["version"]) <= _MAX_UINT64


def parse_file_name(name: str, *, where: str | None = None) -> MigrationFile | None:
    """Parse a file name exactly as golang-migrate does; None for names it ignores.

    A version golang-migrate parses but that does not fit PostgreSQL's bigint
    (its state table's column) is an error here: golang-migrate panics or
    fails with "bigint out of range" half-way through, so refuse it before
    anything runs.
    """
    base = name.rsplit("/", 1)[-1]
    match = FILE_NAME.match(base)
    if match is None or int(match["version"]) > _MAX_UINT64:
        return None
    version = int(match["version"])
    if version > MAX_VERSION:
        raise CatalogueError(
            f"version {match['version']} is above 2^63-1, the largest golang-migrate's "
            "state table (bigint) holds",
            file=where or name,
            fix="renumber the migration (a unix timestamp or a sequence number fits)",
        )
    return MigrationFile(
        version=version,
        title=match["title"],
        direction="up" if match["direction"] == "up" else "down",
    )


def _ignored_name(path: str, base: str) -> CatalogueWarning | None:
    """A warning for a name that looks meant as a migration but golang-migrate skips."""
    if not base.lower().endswith(".sql"):
        return None
    match = FILE_NAME.match(base)
    if match is not None:
        what = f"version {match['version']} does not fit golang-migrate's uint64: it skips `{base}`"
    else:
        what = f"golang-migrate ignores `{base}`: not <version>_<title>.up|down.<extension>"
    return CatalogueWarning(
        file=path, what=what, fix="rename it <version>_<title>.up.sql, or move it out of the folder"
    )


def refuse_byte_order_mark(text: str, *, file: str) -> None:
    """A file starting with a byte-order mark is an error, wherever it is read.

    golang-migrate sends a file's bytes as they are, and PostgreSQL reads a
    BOM as part of the first word: the migration fails in production with a
    syntax error.  The catalogue, the directives and so the migrator all
    refuse it here, before anything runs.
    """
    if text.startswith("\ufeff"):
        raise CatalogueError(
            "the file starts with a byte-order mark, which golang-migrate sends to "
            "PostgreSQL (a syntax error at the first statement)",
            file=file,
            line=1,
            fix="save the file as UTF-8 without a BOM",
        )


def parse_directives(text: str, *, file: str) -> Directives:
    """Read the ``-- key: value`` directives at the top of an up file.

    The block ends at the first line that is neither blank nor a ``--``
    comment: directives after the first statement would be invisible to a
    reader skimming the file, so they are not read.  Comments that do not look
    like ``-- key:`` (lower-case key) are prose and ignored.
    """
    compat: Compat | None = None
    rollback: Rollback | None = None
    note: str | None = None
    ignores: set[str] = set()
    #: The line each directive stood on; a directive may appear once.
    seen: dict[str, int] = {}
    transaction = ""
    refuse_byte_order_mark(text, file=file)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("--"):
            break
        match = DIRECTIVE.match(line)
        if match is None:
            continue
        key, value = match["key"], match["value"]
        if key not in KNOWN_DIRECTIVES:
            raise CatalogueError(
                f"unknown directive `{key}`",
                file=file,
                line=number,
                fix="known directives: compat, rollback, note, lint, transaction (a prose "
                "comment must not start with a lower-case word and a colon)",
            )
        if key in seen:
            raise CatalogueError(
                f"duplicate `{key}` directive (first on line {seen[key]})",
                file=file,
                line=number,
                fix=_DUPLICATE_FIX[key],
            )
        seen[key] = number
        if key == "compat":
            if value not in ("live", "offline"):
                raise CatalogueError(
                    f"bad compat value `{value}`", file=file, line=number, fix="use live or offline"
                )
            compat = "live" if value == "live" else "offline"
        elif key == "rollback":
            if value not in ("live", "offline"):
                raise CatalogueError(
                    f"bad rollback value `{value}`",
                    file=file,
                    line=number,
                    fix="use live or offline (a migration without a down file needs no directive: "
                    "its rollback is a restore)",
                )
            rollback = "live" if value == "live" else "offline"
        elif key == "transaction":
            if value not in TRANSACTION_MODES:
                raise CatalogueError(
                    f"bad transaction value `{value}`",
                    file=file,
                    line=number,
                    fix="use `none` (outside a transaction block, the file as one query, as "
                    "golang-migrate) or `per-statement` (also one statement at a time)",
                )
            transaction = value
        elif key == "note":
            if not value:
                raise CatalogueError(
                    "empty note", file=file, line=number, fix="write the note or remove the line"
                )
            note = value
        else:
            ignores.update(_ignored_rules(value, file=file, line=number))
    return Directives(
        compat=compat,
        compat_line=seen.get("compat"),
        note=note,
        lint_ignore=frozenset(ignores),
        lint_ignore_line=seen.get("lint"),
        no_transaction="transaction" in seen,
        rollback=rollback,
        rollback_line=seen.get("rollback"),
        per_statement=transaction == "per-statement",
    )


#: What to do about a repeated directive, by key.
_DUPLICATE_FIX = {
    "compat": "keep one",
    "rollback": "keep one",
    "transaction": "keep one",
    "note": "join the notes into one line",
    "lint": "list every rule in one `-- lint: ignore a, b` line",
}


def _ignored_rules(value: str, *, file: str, line: int) -> list[str]:
    """The rule ids of a ``-- lint: ignore a, b`` directive's value."""
    words = value.split(None, 1)
    if len(words) != 2 or words[0] != "ignore":
        raise CatalogueError(
            f"bad lint directive `{value}`",
            file=file,
            line=line,
            fix="write `-- lint: ignore RULE[, RULE]`",
        )
    rules = [r.strip() for r in words[1].split(",")]
    for rule in rules:
        if not RULE_ID.match(rule):
            raise CatalogueError(
                f"bad rule id `{rule}` in lint directive",
                file=file,
                line=line,
                fix="rule ids are kebab-case, as `rollsafe lint` prints them",
            )
    return rules


def catalogue_from_files(folder: str, files: Mapping[str, str]) -> Catalogue:
    """Build a catalogue from ``{path: text}`` (paths under ``folder``, ``/``-separated).

    Pure: the same rules serve a folder on disk and a tree read from git.
    Files in sub-folders are ignored, as golang-migrate's file source does.
    """
    prefix = folder.rstrip("/") + "/" if folder not in ("", ".") else ""
    ups: dict[int, tuple[str, MigrationFile]] = {}
    downs: dict[int, tuple[str, MigrationFile]] = {}
    warnings: list[CatalogueWarning] = []
    for path in sorted(files):
        relative = path[len(prefix) :] if prefix and path.startswith(prefix) else path
        if "/" in relative:
            continue
        parsed = parse_file_name(relative, where=path)
        if parsed is None:
            ignored = _ignored_name(path, relative)
            if ignored is not None:
                warnings.append(ignored)
            continue
        refuse_byte_order_mark(files[path], file=path)
        table = ups if parsed.direction == "up" else downs
        if parsed.version in table:
            other = table[parsed.version][0]
            raise CatalogueError(
                f"duplicate version {parsed.version}: also `{other}`",
                file=path,
                fix="give each migration its own version",
            )
        table[parsed.version] = (path, parsed)
    migrations: list[Migration] = []
    for version, (down_path, down) in sorted(downs.items()):
        if version not in ups:
            # golang-migrate records such a version on the way up without running anything,
            # then runs a down file whose up never ran: refused here (a deliberate difference).
            raise CatalogueError(
                f"down file without an up file for version {version}",
                file=down_path,
                fix=f"add {version}_{down.title}.up.sql or delete the down file",
            )
        up_path, up = ups[version]
        if up.title != down.title:
            warnings.append(
                CatalogueWarning(
                    file=down_path,
                    what=f"down file title `{down.title}` differs from up file `{up_path}` "
                    "(golang-migrate pairs them by version)",
                    fix="rename one so both read <version>_<same title>",
                )
            )
    for version, (up_path, up) in sorted(ups.items()):
        up_sql = files[up_path]
        down_entry = downs.get(version)
        migrations.append(
            Migration(
                version=version,
                title=up.title,
                up_path=up_path,
                up_sql=up_sql,
                down_path=down_entry[0] if down_entry else None,
                down_sql=files[down_entry[0]] if down_entry else None,
                directives=parse_directives(up_sql, file=up_path),
            )
        )
    return Catalogue(folder=folder, migrations=tuple(migrations), warnings=tuple(warnings))


def read_text(path: Path, *, shown_as: str) -> str:
    """Read a migration file as UTF-8, or say which file cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CatalogueError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start})",
            file=shown_as,
            fix="save the file as UTF-8",
        ) from exc
    except OSError as exc:
        raise CatalogueError(
            f"cannot read: {exc.strerror}", file=shown_as, fix="check the file's permissions"
        ) from exc


def refuse_link(path: str) -> None:
    """A symbolic link with a migration's name is an error (other links are ignored).

    Why one answer everywhere: golang-migrate follows the link, but git
    stores only the link's target path, so history (the table, checksums,
    the pair tests) cannot know what any commit's migration said, and the
    file outside the repository can change without a commit.  Following it
    in the work tree and not in history made lint and the table disagree.
    """
    if read_by_catalogue(path.rsplit("/", 1)[-1]):
        raise CatalogueError(
            "migration file is a symbolic link: git keeps only the link, not the migration",
            file=path,
            fix="commit the migration itself (replace the link with a copy of its target)",
        )


def load_catalogue(repo: Path, folder: str) -> Catalogue:
    """Parse the migrations folder ``folder`` (repository-relative) of the work tree."""
    root = repo / folder
    if not root.is_dir():
        raise CatalogueError(
            "migrations folder not found",
            file=folder,
            fix="create it or set `migrations` in [tool.rollsafe] / --migrations",
        )
    files: dict[str, str] = {}
    for entry in sorted(root.iterdir()):
        shown = f"{folder.rstrip('/')}/{entry.name}"
        if entry.is_symlink():
            refuse_link(shown)
        if not entry.is_file() or not read_by_catalogue(entry.name):
            continue
        files[shown] = read_text(entry, shown_as=shown)
    return catalogue_from_files(folder, files)


def read_by_catalogue(name: str) -> bool:
    """Whether the catalogue reads a file named ``name`` (a base name).

    Migration names of any extension, and ``.sql`` names golang-migrate skips
    (lint warns about those); history, lint and the table use the same test.
    """
    return is_migration_name(name) or name.lower().endswith(".sql")


def file_patterns(folder: str) -> list[str]:
    """Globs (for `rollsafe._git.files_at`) that cover every file the catalogue reads."""
    base = "" if folder in ("", ".") else f"{folder.rstrip('/')}/"
    return [f"{base}*.up.*", f"{base}*.down.*", f"{base}*.sql", f"{base}*.SQL"]


def versions_of(paths: Iterable[str], folder: str) -> set[int]:
    """Versions of the up files among ``paths`` directly in ``folder`` (no error on junk).

    Used on history, where a commit long ago may have held a misnamed file that
    lint reports separately; the schema of a commit is the highest valid up file.
    """
    prefix = folder.rstrip("/") + "/" if folder not in ("", ".") else ""
    found: set[int] = set()
    for path in paths:
        if prefix and not path.startswith(prefix):
            continue
        relative = path[len(prefix) :]
        if "/" in relative:
            continue
        match = FILE_NAME.match(relative)
        if match and match["direction"] == "up" and int(match["version"]) <= MAX_VERSION:
            found.add(int(match["version"]))
    return found
