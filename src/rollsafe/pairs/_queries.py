"""The code's SQL queries (sqlc-style files), prepared against a schema.

Why: during a rolling upgrade the old code keeps running against the new
schema.  Its queries are the contract it relies on, and sqlc-style projects
keep every one of them in ``.sql`` files (``-- name: GetMachine :one``
headers, ``$1`` placeholders).  Preparing each of them against the new
schema (``PREPARE``: parse, resolve names and types, plan, without running)
proves that old code can still talk to the database, with no test data and
no code to run.  A query that no longer prepares is named with its file,
line and the server's message, so the reader knows which call breaks.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pglast
import psycopg

from rollsafe._db import ServerError
from rollsafe._sqltext import error_line
from rollsafe.errors import QueryFileError
from rollsafe.pairs._batch import batchable, run_batch
from rollsafe.pairs._scope import names_in, parse_tree

#: ``-- name: GetMachine :one`` (sqlc), also in block-comment form.
HEADER = re.compile(
    r"^\s*(?:--|/\*)\s*name:\s*(?P<name>\S+)\s*(?::(?P<kind>[A-Za-z]+))?\s*(?:\*/)?\s*$"
)
#: Query kinds sqlc knows; anything else is a typo worth reporting.
KINDS = (
    "one",
    "many",
    "exec",
    "execrows",
    "execresult",
    "execlastid",
    "batchexec",
    "batchmany",
    "batchone",
    "copyfrom",
)
_NAMED = re.compile(
    r"sqlc\.(?P<func>arg|narg|slice|embed)\(\s*['\"]?(?P<arg>[A-Za-z_][A-Za-z0-9_]*)['\"]?\s*\)"
    r"|(?<![@\w:])@(?P<at>[A-Za-z_][A-Za-z0-9_]*)"
)
_NUMBERED = re.compile(r"\$(\d+)")


@dataclass(frozen=True)
class Query:
    """One named query of a query file.

    ``text`` is the query as written; ``sql`` is what PostgreSQL is asked to
    prepare (sqlc's named parameters turned into ``$n``).  ``line`` is the
    line of the query's first SQL line in ``file``.
    """

    name: str
    kind: str
    file: str
    line: int
    text: str
    sql: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class QueryFailure:
    """A query the server refused to prepare, with where in the file it broke."""

    query: Query
    error: ServerError
    line: int

    def sentence(self) -> str:
        """``query GetMachine (queries/machines.sql:7): column "provider" does not exist``."""
        return (
            f"query {self.query.name} ({self.query.file}:{self.line}) does not prepare: "
            f"{self.error.text}"
        )


def _mask_literals(text: str) -> str:
    """``text`` with string literals, quoted names and comments blanked (same length).

    Placeholders are looked for in what remains, so ``'@home'`` or a ``$1``
    inside a comment is left alone.
    """
    out = list(text)
    i, size = 0, len(text)
    while i < size:
        start = i
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = size if end == -1 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = size if end == -1 else end + 2
        elif text[i] in "'\"":
            quote = text[i]
            i += 1
            while i < size:
                if text[i] == quote:
                    if i + 1 < size and text[i + 1] == quote:
                        i += 2
                        continue
                    break
                i += 1
            i += 1
        elif text[i] == "$":
            match = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", text[i:])
            if match is None:
                i += 1
                continue
            tag = match.group(0)
            end = text.find(tag, i + len(tag))
            i = size if end == -1 else end + len(tag)
        else:
            i += 1
            continue
        for j in range(start, min(i, size)):
            if out[j] != "\n":
                out[j] = " "
    return "".join(out)


def to_postgres(text: str) -> str:
    """Turn sqlc's named parameters into numbered ones PostgreSQL can prepare.

    ``sqlc.arg(x)``, ``sqlc.narg(x)`` and ``@x`` become ``$n`` (the same name
    the same number, numbered after any ``$n`` already used);
    ``sqlc.slice(x)`` becomes a ``$n`` too, and ``sqlc.embed(t)`` becomes
    ``t.*``, which is what sqlc sends.
    """
    masked = _mask_literals(text)
    used = [int(n) for n in _NUMBERED.findall(masked)]
    next_number = max(used, default=0) + 1
    numbers: dict[str, int] = {}
    pieces: list[str] = []
    last = 0
    for match in _NAMED.finditer(text):
        if masked[match.start()] != text[match.start()]:
            continue  # inside a string literal or a comment
        pieces.append(text[last : match.start()])
        if match["func"] == "embed":
            pieces.append(f"{match['arg']}.*")
        else:
            name = match["arg"] or match["at"]
            if name not in numbers:
                numbers[name] = next_number
                next_number += 1
            pieces.append(f"${numbers[name]}")
        last = match.end()
    pieces.append(text[last:])
    return "".join(pieces)


@functools.lru_cache(maxsize=1024)
def parse_query_file(path: str, text: str) -> tuple[Query, ...]:
    """The named queries of one sqlc-style file, in file order.

    Comment lines before the first header are a file comment; SQL before it
    has no name to report, so it is an error, as in sqlc.  Cached: the pairs
    of a run read the same files at many commits.
    """
    lines = text.splitlines()
    queries: list[Query] = []
    current: tuple[str, str, int] | None = None
    body: list[tuple[int, str]] = []

    def finish() -> None:
        if current is None:
            return
        name, kind, header_line = current
        while body and not body[-1][1].strip():
            body.pop()
        while body and (not body[0][1].strip() or body[0][1].lstrip().startswith("--")):
            body.pop(0)
        if not body:
            raise QueryFileError(
                f"query {name} has no SQL", file=path, line=header_line, fix="write its statement"
            )
        query_text = "\n".join(line for _, line in body)
        queries.append(
            Query(
                name=name,
                kind=kind,
                file=path,
                line=body[0][0],
                text=query_text,
                sql=to_postgres(query_text),
            )
        )

    for number, line in enumerate(lines, start=1):
        match = HEADER.match(line)
        if match is not None:
            finish()
            body = []
            kind = match["kind"]
            if kind is None or kind not in KINDS:
                raise QueryFileError(
                    f"query {match['name']} has {'no' if kind is None else 'an unknown'} kind"
                    + ("" if kind is None else f" `:{kind}`"),
                    file=path,
                    line=number,
                    fix=f"end the header with one of :{', :'.join(KINDS)}",
                )
            current = (match["name"], kind, number)
            continue
        if current is None:
            stripped = line.strip()
            if stripped and not stripped.startswith("--"):
                raise QueryFileError(
                    "SQL before the first `-- name:` header",
                    file=path,
                    line=number,
                    fix="start every query with `-- name: Name :kind`",
                )
            continue
        body.append((number, line))
    finish()
    return tuple(queries)


def parse_query_files(files: Mapping[str, str]) -> tuple[Query, ...]:
    """The queries of several files, files in path order."""
    found: list[Query] = []
    for path in sorted(files):
        found.extend(parse_query_file(path, files[path]))
    return tuple(found)


_PREFIX = "PREPARE rollsafe_query AS "
_DEALLOCATE = "DEALLOCATE rollsafe_query"


#: What PostgreSQL says when a prepared statement is given several commands.
_SEVERAL = ServerError(
    message="cannot insert multiple commands into a prepared statement", sqlstate="42601"
)


@functools.lru_cache(maxsize=4096)
def _statement_count(sql: str) -> int | None:
    """How many statements ``sql`` holds (PostgreSQL's scanner); None when it cannot tell."""
    try:
        parts = pglast.split(sql, with_parser=False, only_slices=True)
    except pglast.parser.ParseError:
        return None
    return len([part for part in parts if sql[part].strip()])


def prepare_queries(
    conn: psycopg.Connection[tuple[object, ...]], queries: Iterable[Query]
) -> tuple[QueryFailure, ...]:
    """Prepare each query on ``conn``; the ones the server refuses, with its message.

    All of them first go out in one round trip (`rollsafe.pairs._batch`: each
    ``PREPARE`` followed by its ``DEALLOCATE``, in a transaction rolled
    back).  From the first one refused on, each ``PREPARE`` runs in its own
    savepoint of one transaction that is rolled back, so nothing persists and
    one failure does not hide the next.  The prepared statement is
    deallocated at once: the name is reused.

    A query text that holds several statements is refused without being
    sent, with the message PostgreSQL gives a driver that prepares it: code
    cannot prepare it, and sent as text the statements after the first would
    run (a sequence they advance does not roll back).
    """
    failures: dict[int, QueryFailure] = {}
    batch: list[tuple[int, Query]] = []
    slow: list[tuple[int, Query]] = []
    for index, query in enumerate(queries):
        count = _statement_count(query.sql)
        if count is not None and count > 1:
            failures[index] = QueryFailure(query=query, error=_SEVERAL, line=query.line)
        elif count == 1 and batchable([query.sql]):
            batch.append((index, query))
        else:
            slow.append((index, query))
    if batch:
        statements = [part for _, q in batch for part in (_PREFIX + q.sql, _DEALLOCATE)]
        outcome = run_batch(conn, statements, end="ROLLBACK")
        if outcome.failed is not None:
            # Statement 2i prepares query i and 2i + 1 deallocates it; the ones before passed.
            position, deallocating = divmod(outcome.failed, 2)
            if deallocating:
                run_batch(conn, [_DEALLOCATE], end="ROLLBACK")
                position += 1
            slow.extend(batch[position:])
    for index, failure in _prepare_one_by_one(conn, sorted(slow, key=lambda item: item[0])):
        failures[index] = failure
    return tuple(failures[index] for index in sorted(failures))


def _prepare_one_by_one(
    conn: psycopg.Connection[tuple[object, ...]], queries: Sequence[tuple[int, Query]]
) -> list[tuple[int, QueryFailure]]:
    failures: list[tuple[int, QueryFailure]] = []
    if not queries:
        return failures
    with conn.transaction(force_rollback=True):
        for index, query in queries:
            try:
                with conn.transaction():
                    # prepare=False: psycopg must not server-prepare these statements itself.
                    conn.execute(_PREFIX + query.sql, prepare=False)
                    conn.execute(_DEALLOCATE, prepare=False)
            except psycopg.errors.Error as exc:
                if isinstance(exc, psycopg.OperationalError) and conn.closed:
                    raise
                error = ServerError.from_diag(exc.diag)
                line = (
                    error_line(
                        error.position, query.sql, prefix=len(_PREFIX), first_line=query.line
                    )
                    or query.line
                )
                failures.append((index, QueryFailure(query=query, error=error, line=line)))
    return failures


@functools.lru_cache(maxsize=4096)
def referenced_relations(sql: str) -> frozenset[str] | None:
    """Bare names of the relations a query reads or writes; ``None`` when it does not parse.

    Names of common table expressions count too: harmless, a query is only
    ever prepared once more than needed.  Read from the parser's JSON tree
    (`rollsafe.pairs._scope.parse_tree`): a pair asks for every query of the old
    code, and building pglast's Python objects would cost ten times the parse.
    """
    statements = parse_tree(sql)
    if statements is None:
        return None
    relations, _calls = names_in(statements)
    return frozenset(name for _schema, name in relations if name)
