"""The Upgrade, Rollback and Notes cells of a row, from its migrations' verdicts.

Why: a row's cell is its worst migration's verdict, with the reasons that
decided it; keeping that rule apart from row building lets it be read and
tested on its own.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    pass


Compat = Literal["live", "offline"]


RollbackMode = Literal["live", "offline", "restore"]


class Verdict(Protocol):
    """What rows need from lint's ``CompatVerdict``: the compat and whether it was inferred.

    A protocol rather than an import, so row building stays independent of the
    linter (any object with these attributes will do, e.g. a declared compat).
    """

    @property
    def compat(self) -> Compat: ...

    @property
    def inferred(self) -> bool: ...

    @property
    def reasons(self) -> tuple[str, ...]: ...


class RollbackVerdict(Protocol):
    """What rows need from lint's ``RollbackVerdict``: the mode, how it was decided, and why."""

    @property
    def mode(self) -> RollbackMode: ...

    @property
    def inferred(self) -> bool: ...

    @property
    def reasons(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class _Missing:
    """The verdict of a migration the branch tip no longer has: assume the worst, say so."""

    compat: Compat = "offline"
    inferred: bool = True
    reasons: tuple[str, ...] = ()


def _upgrade(
    introduced: Sequence[int], removed: Sequence[int], compat: Mapping[int, Verdict]
) -> tuple[Compat, bool, tuple[str, ...]]:
    """The Upgrade cell of a row from the verdicts of the migrations it introduces.

    ``live`` only when every migration is live; ``inferred`` when the deciding
    verdicts came from lint: for ``live`` any inferred verdict, for
    ``offline`` only when no migration *declares* offline (a declared offline
    is certain whatever lint inferred for the others).
    """
    if removed:
        listed = ", ".join(str(v) for v in removed)
        return (
            "offline",
            False,
            (
                f"Schema goes down: migration {listed} was removed from the folder. A database "
                "already past this schema must be migrated down by code that still has the down "
                "file before this code starts (golang-migrate refuses a version it has no file "
                "for).",
            ),
        )
    verdicts = {v: compat.get(v) or _Missing() for v in introduced}
    offline = [v for v, verdict in verdicts.items() if verdict.compat == "offline"]
    extra: list[str] = []
    missing = [v for v in introduced if v not in compat]
    if missing:
        listed = ", ".join(str(v) for v in missing)
        extra.append(f"Migration {listed} has no readable file in history; taken as offline.")
    if not offline:
        return "live", any(verdict.inferred for verdict in verdicts.values()), tuple(extra)
    declared = any(not verdicts[v].inferred for v in offline)
    if not declared:
        reasons = [
            f"{v} ({', '.join(verdicts[v].reasons)})" if verdicts[v].reasons else str(v)
            for v in offline
            if v not in missing
        ]
        if reasons:
            extra.append(f"Offline inferred by lint: {'; '.join(reasons)}.")
    return "offline", not declared, tuple(extra)


def _rollback(
    introduced: Sequence[int],
    removed: Sequence[int],
    verdicts: Mapping[int, RollbackVerdict] | None,
    irreversible: Collection[int],
) -> tuple[RollbackMode, bool, tuple[str, ...]]:
    """The Rollback cell of a row: the worst verdict of the migrations it introduces.

    ``restore`` beats ``offline`` beats ``live``.  The reasons are those of
    the deciding migrations, each prefixed with its version, so a plan can
    justify its mode.  A row whose schema went down is rolled back by
    starting the older code, which applies the removed versions again: all
    components stop first, as for its upgrade.
    """
    if removed:
        listed = ", ".join(str(v) for v in removed)
        return (
            "offline",
            False,
            (f"the older code applies migration {listed} again when it starts",),
        )
    found: dict[int, tuple[RollbackMode, bool, tuple[str, ...]]] = {}
    for version in introduced:
        verdict = verdicts.get(version) if verdicts is not None else None
        if version in irreversible:
            found[version] = ("restore", False, ("has no down file",))
        elif verdict is not None:
            found[version] = (verdict.mode, verdict.inferred, verdict.reasons)
        elif verdicts is None:
            found[version] = ("live", True, ())
        else:
            found[version] = ("offline", True, ("is not in the folder at the branch tip",))
    if not found:
        return "live", False, ()
    for mode in ("restore", "offline", "live"):
        deciding = [v for v, (m, _, _) in found.items() if m == mode]
        if not deciding:
            continue
        declared = [v for v in deciding if not found[v][1]]
        # A declared (or certain) verdict decides alone; the reasons of every
        # migration of that mode explain it.
        inferred = not declared if mode != "live" else any(found[v][1] for v in found)
        reasons = tuple(f"migration {v} {reason}" for v in deciding for reason in found[v][2])
        return mode, inferred, reasons
    raise AssertionError("unreachable: every verdict has a mode")


def _notes(
    introduced: Sequence[int], notes: Mapping[int, str], irreversible: Collection[int]
) -> tuple[str, ...]:
    """The migrations' ``-- note:`` texts, then which of them cannot be undone."""
    texts = [notes[v].strip() for v in introduced if notes.get(v, "").strip()]
    gone = [v for v in introduced if v in irreversible]
    if gone:
        listed = ", ".join(str(v) for v in gone)
        texts.append(f"Irreversible: migration {listed} has no down file.")
    return tuple(texts)
