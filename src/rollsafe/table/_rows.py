"""Rows of the release table: which CLs ship which schema version, in landing order.

Why: a release engineer needs to know, for every code version, which schema it
runs on and how one gets there from the schema before it.  Rows are built
from plain data (the history and the compat verdict of every migration) with
no I/O, so every rule below is tested in memory.

Decisions (the README repeats them):

* A row is a run of consecutive CLs (landing order) with the same schema.  CLs
  before the first migration (schema ``None``) are not a row; the caller
  reports their count (`leading_without_schema`).
* ``baseline`` folds every CL whose schema is at most the baseline into row 0.
* With release records, only released CLs are rows' members; unreleased CLs
  between two releases belong to no row (``rollsafe which`` still answers for
  them), and a schema that only unreleased CLs carried is folded into the next
  released row, whose Upgrade cell then covers all of its migrations.
* The newest row is *open* (unless release records shape the rows): its CL
  range is "first and later", so commits that do not change the schema do not
  change the table.  With release records every row is closed: the table then
  only changes when a record is written, which is a deliberate act.
* A closed row's CL range runs from its lowest to its highest CL number, so
  every CL lies in its own row's range; the CLs of other rows inside that
  range are its out-of-order list.  The open row's range is its first CL and
  everything above; CLs that land in the open row with a lower number are
  kept in the data (``rollsafe which``, JSON) but not listed in the table,
  whose legend states the rule instead, or every such landing would make the
  committed table stale.
* The Upgrade cell is ``live`` when every migration the row introduces is
  live.  ``(inferred)`` marks it when the deciding verdicts came from lint: a
  ``live`` cell with any undeclared migration, an ``offline`` cell with no
  migration that *declares* offline.  A migration the branch tip no longer
  has counts as offline, inferred.
* The Rollback cell says how one goes back from this row to the previous
  one: ``restore`` when any migration it introduces cannot be undone by a
  down file, else ``offline`` when any is offline, else ``live``;
  ``(inferred)`` when the deciding verdicts came from lint, not a
  ``-- rollback:`` directive (a missing down file is never inferred).
* A schema that goes down (the head migration deleted) opens a row of its own
  that introduces nothing, lists the removed versions and is ``offline``: a
  database already at the removed version must be migrated down by code that
  still has its down file, because golang-migrate refuses a version it has no
  file for.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import operator
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rollsafe.errors import RollsafeError
from rollsafe.migrate import parse_file_name, versions_of

if TYPE_CHECKING:
    from rollsafe.history import CodeVersion, History
from rollsafe.table._cells import (
    Compat,
    RollbackMode,
    RollbackVerdict,
    Verdict,
    _notes,
    _rollback,
    _upgrade,
)


@dataclass(frozen=True)
class OutOfOrder:
    """A CL whose number falls in a row's CL range although it landed in another row.

    Why: Gerrit numbers a change when it is uploaded, not when it lands, so a
    reader who sees "CL range 1549-1560" must be told that CL 1556 landed after
    the newer schema did.  ``anchor`` is the first CL of the newer of the two
    rows: the CL the out-of-order one landed after (or before).
    """

    version: CodeVersion
    row: int
    schema: int | None
    anchor: CodeVersion
    newer: bool

    def sentence(self) -> str:
        """``CL 1556 landed after 1565: it ships the newer schema (row 4, schema 4)``."""
        when, which = ("after", "newer") if self.newer else ("before", "older")
        if self.version.commit == self.anchor.commit:
            # The CL that brought the newer schema, inside the older row's range.
            return (
                f"CL {self.version.cl} brought the newer schema (row {self.row}, schema "
                f"{_schema_text(self.schema)})"
            )
        return (
            f"CL {self.version.cl} landed {when} {self.anchor.cl}: it ships the {which} "
            f"schema (row {self.row}, schema {_schema_text(self.schema)})"
        )


@dataclass(frozen=True)
class Row:
    """One shipped schema version and the CLs that ship it.

    ``migrations`` are the versions this row introduced, ``(previous, schema]``;
    ``removed`` the versions that disappeared when the schema went down.
    ``upgrade`` says how one gets here from the previous row (``None`` for
    row 0); ``inferred`` marks an Upgrade cell that came from lint inference
    rather than a ``-- compat:`` declaration.  ``baseline`` is set on row 0
    when a baseline folded migrations into it.
    """

    id: int
    schema: int | None
    previous: int | None
    migrations: tuple[int, ...]
    versions: tuple[CodeVersion, ...]
    upgrade: Compat | None
    inferred: bool
    notes: tuple[str, ...] = ()
    out_of_order: tuple[OutOfOrder, ...] = ()
    open: bool = False
    removed: tuple[int, ...] = ()
    baseline: int | None = None
    #: How one goes back from this row to the previous one (None for row 0), and why.
    rollback: RollbackMode | None = None
    rollback_inferred: bool = False
    rollback_reasons: tuple[str, ...] = ()

    @property
    def first(self) -> CodeVersion:
        """The CL that opened the row (first to land with its schema)."""
        return self.versions[0]

    @property
    def last(self) -> CodeVersion:
        """The newest CL of the row: where an upgrade plan stops within it."""
        return self.versions[-1]

    @property
    def numeric_range(self) -> tuple[int, int | None] | None:
        """The CL numbers the row's CL range covers; ``None`` when CLs have no numbers (tags).

        A closed row covers its lowest to its highest CL number, so every CL
        of the row lies inside its own range.  The open row covers its first
        CL's number and everything above (``hi`` is ``None``): CLs that land
        later join it whatever their number, and listing each of those would
        change the table with every commit.
        """
        if self.open:
            return None if self.first.number is None else (self.first.number, None)
        numbers = [v.number for v in self.versions if v.number is not None]
        if not numbers:
            return None
        return (min(numbers), max(numbers))

    def cl_range(self) -> str:
        """The CL range as the table prints it: ``1549-1560``, ``1565`` or ``1565 and later``."""
        if self.open:
            return f"{self.first.cl} and later"
        span = self.numeric_range
        if span is None:
            low, high = self.first.cl, self.last.cl
        else:
            low, high = str(span[0]), str(span[1])
        return low if low == high else f"{low}-{high}"

    def schema_range(self) -> str:
        """The versions the row introduced: ``5``, ``4-5``, ``up to 3 (baseline)``, ...

        A row whose schema went down introduces nothing: ``6 (down from 7)``.
        """
        if self.baseline is not None:
            if self.schema == self.baseline:
                return f"up to {self.baseline} (baseline)"
            return f"up to {_schema_text(self.schema)} (baseline {self.baseline})"
        if self.removed and not self.migrations:
            return f"{_schema_text(self.schema)} (down from {_schema_text(self.previous)})"
        if not self.migrations:
            return _schema_text(self.schema)
        low, high = self.migrations[0], self.migrations[-1]
        return str(low) if low == high else f"{low}-{high}"

    def upgrade_text(self) -> str:
        """The Upgrade cell: ``live``, ``offline``, ``offline (inferred)``; ``-`` for row 0."""
        if self.upgrade is None:
            return "-"
        return f"{self.upgrade} (inferred)" if self.inferred else self.upgrade

    def rollback_text(self) -> str:
        """The Rollback cell: ``live``, ``offline (inferred)``, ``restore``; ``-`` for row 0."""
        if self.rollback is None:
            return "-"
        return f"{self.rollback} (inferred)" if self.rollback_inferred else self.rollback


def _schema_text(schema: int | None) -> str:
    return "none" if schema is None else str(schema)


def files_as_landed(history: History) -> dict[str, str]:
    """``path -> blob`` of every migration as it last stood in history, deleted ones included.

    Why: a row's Upgrade cell describes the migrations as they shipped, so it
    must not change when a file is deleted later (a project that drops its
    migrations folder still shipped every row).  Each version is taken, with
    its down file, from the newest commit whose folder holds its up file: the
    tip for files that still exist, the commit before the deletion otherwise.
    """
    prefix = history.folder.rstrip("/") + "/" if history.folder not in ("", ".") else ""
    parsed: dict[str, tuple[int, bool] | None] = {}
    taken: set[int] = set()
    chosen: dict[str, str] = {}
    seen: set[int] = set()
    for version in reversed(history.versions):
        mapping = version.migrations
        if id(mapping) in seen:
            continue  # versions that did not touch the folder share their mapping
        seen.add(id(mapping))
        found: dict[int, list[str]] = {}
        ups: set[int] = set()
        for path in mapping:
            if path not in parsed:
                parsed[path] = _parse_path(path, prefix)
            entry = parsed[path]
            if entry is None or entry[0] in taken:
                continue
            found.setdefault(entry[0], []).append(path)
            if entry[1]:
                ups.add(entry[0])
        for number in ups:
            taken.add(number)
            chosen.update((path, mapping[path]) for path in found[number])
    return chosen


def _parse_path(path: str, prefix: str) -> tuple[int, bool] | None:
    """``(version, is_up)`` of a migration file directly in the folder, else ``None``."""
    if not path.startswith(prefix) or "/" in path[len(prefix) :]:
        return None
    try:
        parsed = parse_file_name(path[len(prefix) :], where=path)
    except RollsafeError:
        return None  # misnamed: lint reports it
    if parsed is None:
        return None
    return parsed.version, parsed.direction == "up"


def leading_without_schema(history: History) -> int:
    """How many CLs landed before the first migration: they ship no schema, so no row."""
    count = 0
    for version in history.versions:
        if version.schema is not None:
            break
        count += 1
    return count


def rows_from(
    history: History,
    compat: Mapping[int, Verdict],
    notes: Mapping[int, str],
    *,
    baseline: int | None = None,
    released: Collection[str] | None = None,
    irreversible: Collection[int] = (),
    rollback: Mapping[int, RollbackVerdict] | None = None,
) -> tuple[Row, ...]:
    """Group the CLs of ``history`` into rows of equal schema, in landing order.

    ``compat`` and ``notes`` are keyed by migration version (from the branch
    tip's catalogue and lint); ``released`` limits rows to those CLs (release
    records); ``irreversible`` names versions without a down file so the Notes
    say so; ``rollback`` holds each version's rollback verdict (without it
    the Rollback cell follows ``irreversible`` alone).  Pure: the same inputs
    give the same rows.
    """
    groups = _groups(history.versions, baseline, released)
    present_in = _VersionCache(history.folder)
    if groups:
        # The newest mapping holds nearly every path the older ones do (files
        # are rarely deleted): parsing them first spares most rows a miss.
        present_in.learn(groups[-1][-1].migrations)
    rows: list[Row] = []
    for index, group in enumerate(groups):
        is_baseline = index == 0 and baseline is not None and _folded(group, baseline)
        schema: int | None
        if is_baseline:
            anchor = group[-1]
            schema = max(v.schema for v in group if v.schema is not None)
        else:
            anchor = group[0]
            schema = anchor.schema
        present = present_in(anchor.migrations)
        previous = rows[-1].schema if rows else None
        removed: tuple[int, ...] = ()
        if not rows:
            introduced = tuple(sorted(v for v in present if schema is None or v <= schema))
        elif schema is not None and (previous is None or schema > previous):
            introduced = tuple(
                sorted(v for v in present if (previous is None or v > previous) and v <= schema)
            )
        else:
            introduced = ()
            floor = -1 if schema is None else schema
            before = present_in(groups[index - 1][-1].migrations)
            removed = tuple(sorted(v for v in before - present if v > floor))
        back: tuple[RollbackMode | None, bool, tuple[str, ...]] = (None, False, ())
        if rows:
            upgrade, inferred, extra = _upgrade(introduced, removed, compat)
            back = _rollback(introduced, removed, rollback, irreversible)
        else:
            upgrade, inferred, extra = None, False, ()
        if is_baseline:
            row_notes: tuple[str, ...] = (
                f"Baseline: migrations up to {baseline} are folded into row 0.",
            )
        else:
            row_notes = _notes(introduced, notes, irreversible)
        rows.append(
            Row(
                id=index,
                schema=schema,
                previous=previous,
                migrations=introduced,
                versions=group,
                upgrade=upgrade,
                inferred=inferred,
                notes=(*row_notes, *extra),
                removed=removed,
                baseline=baseline if is_baseline else None,
                rollback=back[0],
                rollback_inferred=back[1],
                rollback_reasons=back[2],
            )
        )
    if rows and released is None:
        rows[-1] = dataclasses.replace(rows[-1], open=True)
    return _with_out_of_order(rows)


def _groups(
    versions: tuple[CodeVersion, ...], baseline: int | None, released: Collection[str] | None
) -> list[tuple[CodeVersion, ...]]:
    """The CLs of each row: leading CLs without a schema dropped, the baseline's folded,
    then runs of equal schema."""
    members = versions if released is None else tuple(v for v in versions if v.cl in released)
    start, count = 0, len(members)
    while start < count and members[start].schema is None:
        start += 1  # before the first migration: no schema shipped yet
    groups: list[tuple[CodeVersion, ...]] = []
    if baseline is not None:
        end = start
        while end < count and _at_most(members[end].schema, baseline):
            end += 1
        if end > start:
            groups.append(members[start:end])
            start = end
    groups.extend(tuple(run) for _schema, run in itertools.groupby(members[start:], _schema_of))
    return groups


def _at_most(schema: int | None, baseline: int) -> bool:
    return schema is not None and schema <= baseline


_schema_of = operator.attrgetter("schema")


#: Out-of-order CLs are listed by number, then landing position.
_number_then_position = operator.itemgetter(0, 1)


class _VersionCache:
    """Up versions of a folder mapping, parsing each distinct path once.

    Why: the same few hundred paths appear in the mapping of every row; a
    history of 50,000 commits and 500 rows would otherwise parse them
    hundreds of thousands of times.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.known: dict[str, int] = {}  # path -> up version, or -1 (not an up file)

    def learn(self, migrations: Mapping[str, str]) -> None:
        """Parse the paths of ``migrations`` not seen yet."""
        known = self.known
        for path in migrations.keys() - known.keys():
            parsed = versions_of((path,), self.folder)
            known[path] = next(iter(parsed)) if parsed else -1

    def __call__(self, migrations: Mapping[str, str]) -> set[int]:
        known = self.known
        try:
            # map() runs in C: each row's mapping holds every file of the folder.
            found = set(map(known.__getitem__, migrations))
        except KeyError:  # a path not seen yet
            self.learn(migrations)
            found = set(map(known.__getitem__, migrations))
        found.discard(-1)
        return found


def _folded(group: Sequence[CodeVersion], baseline: int) -> bool:
    """Whether a group is the leading baseline group (every schema at most the baseline)."""
    return all(v.schema is not None and v.schema <= baseline for v in group)


def _with_out_of_order(rows: list[Row]) -> tuple[Row, ...]:
    """Attach to every row the CLs of other rows whose number lies in its CL range.

    Why this shape: at 50,000 CLs the search must not cost a tuple, a sort
    key or a lookup per CL.  Every CL number goes into one sorted list of
    ints; a row whose range holds exactly as many numbers as it has CLs in
    that range lists nothing (the common case), and only the other rows
    can fill the ranges that hold more.
    """
    owns = [[v.number for v in row.versions if v.number is not None] for row in rows]
    everything = list(itertools.chain.from_iterable(owns))
    everything.sort()
    bounds = [(min(own), max(own)) if own else None for own in owns]
    result: list[Row] = []
    for row, own, bound in zip(rows, owns, bounds, strict=True):
        # A closed row's range is its own lowest to highest number (`Row.numeric_range`).
        span = row.numeric_range if row.open else bound
        if span is None:
            result.append(row)
            continue
        low, high = span
        start = bisect.bisect_left(everything, low)
        stop = len(everything) if high is None else bisect.bisect_right(everything, high)
        inside = len(own) if high is not None else sum(1 for n in own if n >= low)
        if stop - start == inside:
            result.append(row)
            continue
        found: list[tuple[int, int, int, CodeVersion]] = []
        for other, reach in zip(rows, bounds, strict=True):
            if other.id == row.id or reach is None or reach[1] < low:
                continue
            if high is not None and reach[0] > high:
                continue
            found.extend(
                (v.number, v.position, other.id, v)
                for v in other.versions
                if v.number is not None and low <= v.number and (high is None or v.number <= high)
            )
        found.sort(key=_number_then_position)
        entries: list[OutOfOrder] = []
        for _number, _position, owner, version in found:
            other = rows[owner]
            newer = owner > row.id
            entries.append(
                OutOfOrder(
                    version=version,
                    row=owner,
                    schema=other.schema,
                    anchor=other.first if newer else row.first,
                    newer=newer,
                )
            )
        result.append(dataclasses.replace(row, out_of_order=tuple(entries)))
    return tuple(result)


def number_ranges(numbers: Iterable[int]) -> str:
    """Numbers as sorted, comma-separated runs: ``1557-1560, 1565-1567, 1569``."""
    runs: list[list[int]] = []
    for number in sorted(set(numbers)):
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    return ", ".join(str(low) if low == high else f"{low}-{high}" for low, high in runs)


def out_of_order_summary(row: Row, rows: Sequence[Row]) -> tuple[str, ...]:
    """At most two sentences for a row: the CLs of older rows in its range, then of newer ones.

    Why: on a real Gerrit history a row's range can hold dozens of CLs of
    other rows; one sentence each drowns the point.  Every CL is still named,
    consecutive numbers run together, and grouped by the row they ship
    (``rollsafe which`` and the JSON keep one sentence per CL).  CLs of the
    open row are left out: they keep landing, and the legend states the rule.
    """
    sentences: list[str] = []
    for newer in (False, True):
        owners: dict[int, list[int]] = {}
        for entry in row.out_of_order:
            number = entry.version.number
            if entry.newer != newer or number is None or rows[entry.row].open:
                continue
            owners.setdefault(entry.row, []).append(number)
        if not owners:
            continue
        groups = "; ".join(
            f"{number_ranges(owners[owner])} (row {owner}, schema "
            f"{_schema_text(rows[owner].schema)})"
            for owner in sorted(owners, reverse=not newer)
        )
        count = sum(len(numbers) for numbers in owners.values())
        cls, verb = ("1 CL", "ships") if count == 1 else (f"{count} CLs", "ship")
        if newer:
            head = f"{cls} landed in a later row and {verb} a newer schema"
        else:
            head = f"{cls} landed before CL {row.first.cl} and {verb} an older schema"
        sentences.append(f"{head}: {groups}")
    return tuple(sentences)


def row_index(rows: Sequence[Row]) -> dict[str, int]:
    """Commit id -> row id, to find the row of a CL in one lookup."""
    return {version.commit: row.id for row in rows for version in row.versions}


def out_of_order_for(rows: Sequence[Row], version: CodeVersion) -> tuple[OutOfOrder, ...]:
    """Every out-of-order entry about one CL (``rollsafe which`` explains them)."""
    return tuple(
        entry
        for row in rows
        for entry in row.out_of_order
        if entry.version.commit == version.commit
    )
