"""History hazards: what happened to the migrations folder after its files shipped.

Why: a database remembers only the version it reached.  Editing a migration it
already applied, deleting or renumbering one, or adding one below its version
makes schemas diverge silently; golang-migrate cannot notice, so lint reads
history (and release records, the deployed checksums) to say which CL did it.
Pure over `History` values; public through `rollsafe.lint.lint_history`.

A migration counts as shipped once a release record includes it, or, in a
repository without records, once a migration with a higher version landed on
top of it (before that, fixing the newest migration in place is the normal
review cycle).  Hazards are judged against where history ends up: a shipped
file restored, a deleted one brought back, is not reported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rollsafe.lint._registry import RULES, Finding, Severity
from rollsafe.lint._sqlparse import statements_key
from rollsafe.migrate._catalogue import FILE_NAME, Catalogue

if TYPE_CHECKING:
    from rollsafe.history import CodeVersion, History, ReleaseRecord


@dataclass(frozen=True)
class _File:
    path: str
    blob: str


@dataclass(frozen=True)
class _Step:
    """One state of the folder: a code version, or the work tree after the newest one."""

    cl: str | None
    commit: str | None
    state: Mapping[str, str]

    def label(self) -> str:
        if self.cl is None:
            return "the work tree (not in any code version yet)"
        return f"CL {self.cl} (commit {(self.commit or '')[:12]})"


def _index(state: Mapping[str, str]) -> tuple[dict[int, _File], dict[int, _File]]:
    """Up and down files of a folder state by version (malformed names are skipped here)."""
    ups: dict[int, _File] = {}
    downs: dict[int, _File] = {}
    for path, blob in state.items():
        match = FILE_NAME.match(path.rsplit("/", 1)[-1])
        if match is None:
            continue
        table = ups if match["direction"] == "up" else downs
        table.setdefault(int(match["version"]), _File(path, blob))
    return ups, downs


def blob_id(data: bytes, *, like: str | None = None) -> str:
    """Git's blob id of ``data`` (SHA-1, or SHA-256 when ``like`` is a 64-digit id).

    Computed in Python so the work tree can be compared with history without
    running git for each file.
    """
    header = f"blob {len(data)}\0".encode()
    if like is not None and len(like) == 64:
        return hashlib.sha256(header + data).hexdigest()
    return hashlib.sha1(header + data, usedforsecurity=False).hexdigest()


@dataclass
class _Event:
    """A hazard found while walking history; its final severity depends on the last state."""

    rule: str
    version: int
    step: _Step
    path: str
    detail: str
    #: Every edit of a shipped file, ``(step, new blob)`` in landing order: each is a
    #: hazard of its own for the databases that applied the version in between.
    edits: list[tuple[_Step, str]] = field(default_factory=list)
    target: int | None = None
    #: The contents that had shipped when the event happened (restoring one repairs it).
    before: frozenset[str] = frozenset()


@dataclass
class _Walk:
    """What the walk over history has seen so far."""

    shipped_up: dict[int, set[str]] = field(default_factory=dict)
    shipped_down: dict[int, set[str]] = field(default_factory=dict)
    #: Why a version counts as shipped (first reason seen).
    because: dict[int, str] = field(default_factory=dict)
    events: list[_Event] = field(default_factory=list)
    edited: dict[tuple[int, str], _Event] = field(default_factory=dict)

    def ship(
        self,
        ups: Mapping[int, _File],
        downs: Mapping[int, _File],
        versions: Iterable[int],
        why: str,
    ) -> None:
        for version in versions:
            if version in ups:
                self.shipped_up.setdefault(version, set()).add(ups[version].blob)
                self.because.setdefault(version, why)
            if version in downs:
                self.shipped_down.setdefault(version, set()).add(downs[version].blob)


def _steps(history: History, current: Mapping[str, str] | None) -> list[_Step]:
    steps = [_Step(v.cl, v.commit, v.migrations) for v in history.versions]
    if current is not None and (not steps or dict(current) != dict(steps[-1].state)):
        steps.append(_Step(None, None, current))
    return steps


def lint_history(
    history: History,
    records: Sequence[ReleaseRecord] = (),
    *,
    catalogue: Catalogue | None = None,
    current: Mapping[str, str] | None = None,
    read_texts: Callable[[Collection[str]], Mapping[str, str]] | None = None,
) -> tuple[Finding, ...]:
    """History hazards of the migrations folder, each naming the CL and commit that did it.

    A migration counts as shipped once a release record includes it, or, when
    there are no records, once a migration with a higher version landed on
    top of it.  ``current`` (path -> blob id of the work tree's files) adds
    the uncommitted state as a last step; ``catalogue`` supplies the
    ``-- lint: ignore`` directives that acknowledge a hazard;
    ``read_texts`` (blob ids -> texts) lets an edit that changed only
    comments or layout count as info instead of an error.

    A hazard repaired later (the shipped content restored, a deleted file
    brought back) is not reported: lint judges where history ends up, and
    names the CL that first went wrong.
    """
    steps = _steps(history, current)
    if len(steps) < 2:
        return ()
    index_of = _Indexer()
    positions = {step.commit: index for index, step in enumerate(steps) if step.commit}
    pending: list[tuple[int, ReleaseRecord]] = sorted(
        # A record of a commit that is not on this branch (a release branch) counts from the start.
        ((positions.get(record.commit, -1), record) for record in records),
        key=lambda item: item[0],
    )
    walk = _Walk()
    for index in range(1, len(steps)):
        previous, step = steps[index - 1], steps[index]
        while pending and pending[0][0] <= index - 1:
            record = pending.pop(0)[1]
            ups, downs = index_of(record.migrations)
            walk.ship(ups, downs, ups, f"release record {record.path}")
        if step.state is previous.state or step.state == previous.state:
            continue  # most versions do not touch the folder
        prev_ups, prev_downs = index_of(previous.state)
        if records:
            top = max(walk.shipped_up, default=None)
        else:
            top = max(prev_ups, default=None)
            if top is not None:
                walk.ship(
                    prev_ups,
                    prev_downs,
                    (v for v in prev_ups if v < top),
                    f"version {top} landed on top of it",
                )
        _compare(walk, (prev_ups, prev_downs), index_of(step.state), step, top)
    return _resolve(walk, steps[-1], catalogue, read_texts)


class _Indexer:
    """`_index` memoised per mapping object: versions that did not touch the folder share one."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[Mapping[str, str], tuple[dict[int, _File], dict[int, _File]]]]
        self._seen = {}

    def __call__(self, state: Mapping[str, str]) -> tuple[dict[int, _File], dict[int, _File]]:
        known = self._seen.get(id(state))
        if known is not None and known[0] is state:
            return known[1]
        result = _index(state)
        self._seen[id(state)] = (state, result)  # keeps ``state`` alive, so its id stays unique
        return result


def _compare(
    walk: _Walk,
    before: tuple[dict[int, _File], dict[int, _File]],
    after: tuple[dict[int, _File], dict[int, _File]],
    step: _Step,
    top: int | None,
) -> None:
    """Record the hazards of one step: the change from ``before`` to ``after`` (indexed states)."""
    prev_ups, prev_downs = before
    ups, downs = after
    if prev_ups and not ups:
        walk.events.append(_Event("folder-vanished", -1, step, "", "lost every migration"))
        return
    new_versions = set(ups) - set(prev_ups)
    renamed_into: set[int] = set()
    for version, old in prev_ups.items():
        if version not in walk.shipped_up:
            continue
        now = ups.get(version)
        if now is None:
            target = next((v for v in sorted(new_versions) if ups[v].blob == old.blob), None)
            if target is not None:
                renamed_into.add(target)
                walk.events.append(
                    _Event(
                        "migration-renamed",
                        version,
                        step,
                        old.path,
                        f"to {ups[target].path}",
                        target=target,
                    )
                )
            else:
                walk.events.append(_Event("migration-deleted", version, step, old.path, ""))
            continue
        if now.blob != old.blob and now.blob not in walk.shipped_up[version]:
            _edited(walk, version, "up", step, now, walk.shipped_up[version])
    for version, old in prev_downs.items():
        now = downs.get(version)
        shipped = walk.shipped_down.get(version)
        if shipped and now is not None and now.blob != old.blob and now.blob not in shipped:
            _edited(walk, version, "down", step, now, shipped)
    if top is not None:
        for version in sorted(new_versions - renamed_into):
            # A shipped version coming back is a restore, judged by its content.
            if version < top and version not in walk.shipped_up:
                walk.events.append(
                    _Event(
                        "migration-out-of-order",
                        version,
                        step,
                        ups[version].path,
                        f"below {top}",
                        target=top,
                    )
                )


def _edited(
    walk: _Walk, version: int, direction: str, step: _Step, now: _File, shipped: Collection[str]
) -> None:
    key = (version, direction)
    event = walk.edited.get(key)
    if event is None:
        event = _Event(
            "shipped-migration-edited",
            version,
            step,
            now.path,
            direction,
            before=frozenset(shipped),
        )
        walk.edited[key] = event
        walk.events.append(event)
    event.edits.append((step, now.blob))


def _resolve(
    walk: _Walk,
    last: _Step,
    catalogue: Catalogue | None,
    read_texts: Callable[[Collection[str]], Mapping[str, str]] | None,
) -> tuple[Finding, ...]:
    """Turn events into findings, judged against the last state of the folder."""
    ups, downs = _index(last.state)
    findings: list[Finding] = []
    ignores: dict[int, frozenset[str]] = {}
    if catalogue is not None:
        ignores = {m.version: m.directives.lint_ignore for m in catalogue}
    texts: Mapping[str, str] = {}
    if read_texts is not None:
        wanted: set[str] = set()
        for event in walk.edited.values():
            if event.detail == "up" and event.version in ups:
                wanted.update(blob for _step, blob in event.edits)
                wanted.update(event.before)
        texts = read_texts(wanted) if wanted else {}
    for event in walk.events:
        if event.rule in ignores.get(event.version, frozenset()):
            continue
        severity: Severity = "error"
        now = ups.get(event.version)
        path = now.path if now is not None else event.path
        shipped = walk.because.get(event.version, "it shipped")
        if event.rule == "folder-vanished":
            if ups:
                continue  # the folder came back
            message = f"the migrations folder lost every migration in {event.step.label()}"
            path = ""
        elif event.rule in ("migration-deleted", "migration-renamed"):
            if now is not None:
                continue  # restored
            if event.rule == "migration-deleted" and not ups:
                continue  # reported once as folder-vanished
            action = "deleted" if event.rule == "migration-deleted" else f"renamed {event.detail}"
            message = (
                f"version {event.version} was {action} by {event.step.label()} "
                f"after it shipped ({shipped})"
            )
        elif event.rule == "shipped-migration-edited":
            current = now if event.detail == "up" else downs.get(event.version)
            if current is None:
                continue  # deleted later: reported as such (or a missing down file)
            if current.blob in event.before:
                continue  # the shipped content was restored
            findings.extend(_edit_findings(event, current.path, shipped, texts))
            continue
        else:  # migration-out-of-order
            if now is None:
                continue  # removed again before anything else
            message = (
                f"version {event.version} was added by {event.step.label()} below version "
                f"{event.target}, which had already shipped"
            )
        findings.append(_history_finding(event.rule, severity, path, message, event.step))
    return tuple(findings)


def _edit_findings(
    event: _Event, path: str, shipped: str, texts: Mapping[str, str]
) -> list[Finding]:
    """One finding per edit of a shipped file, each naming its CL and commit.

    Why each: a database that applied the version between two edits holds
    that edit's text, so every edit is a divergence of its own to repair.
    """
    count = len(event.edits)
    found: list[Finding] = []
    for number, (step, blob) in enumerate(event.edits, start=1):
        severity: Severity = "error"
        message = (
            f"{event.detail} file of version {event.version} was changed by {step.label()} "
            f"after it shipped ({shipped})"
        )
        if count > 1:
            message += f", edit {number} of {count}"
        if event.detail == "down":
            severity = "warning"
            message += "; rollbacks now depend on which code version runs them"
        elif _same_statements(blob, event.before, texts):
            severity = "info"
            message += "; only comments or layout changed, the statements are the same"
        found.append(_history_finding(event.rule, severity, path, message, step))
    return found


def _history_finding(
    rule_id: str, severity: Severity, path: str, message: str, step: _Step
) -> Finding:
    """A finding of a history rule, naming the CL and commit of ``step``."""
    rule = RULES[rule_id]
    return Finding(
        rule_id, severity, path, None, f"{message}: {rule.why}", rule.fix, step.cl, step.commit
    )


def _same_statements(blob: str, shipped: Collection[str], texts: Mapping[str, str]) -> bool:
    if blob not in texts:
        return False
    key = statements_key(texts[blob])
    return key is not None and any(s in texts and statements_key(texts[s]) == key for s in shipped)


def down_origins(history: History) -> dict[int, tuple[str, CodeVersion]]:
    """Per version: the CL that deleted its down file, or else the one that added its up file.

    One pass over the versions that changed the folder, for all migrations at once.
    """
    index_of = _Indexer()
    origins: dict[int, tuple[str, CodeVersion]] = {}
    previous: Mapping[str, str] = {}
    for version in history.versions:
        if version.migrations is previous:
            continue
        ups, downs = index_of(version.migrations)
        prev_ups, prev_downs = index_of(previous)
        for number in ups.keys() - prev_ups.keys():
            if origins.get(number, ("",))[0] != "its down file was deleted":
                origins[number] = ("added without one", version)
        for number in prev_downs.keys() - downs.keys():
            origins[number] = ("its down file was deleted", version)
        previous = version.migrations
    # A down file present in the newest version is missing only from the work tree.
    last_downs = index_of(previous)[1]
    return {number: origin for number, origin in origins.items() if number not in last_downs}
