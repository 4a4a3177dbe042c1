"""Commands of the release table: ``release-table``, ``which``, ``upgrade-plan``, ``release``.

Why: these are the questions a release engineer asks of history (which CL
ships which schema, how do I get from here to there, what did we deploy).
Each is a typed function taking the config first, called alike by the
console script, invoke and nox.

The table is a function of history: the catalogue (notes, compat, down
files) is read from the branch tip's tree through git, never from the work
tree, so the same commit gives the same table on every machine.  Release
records are the exception, read from the work tree, so that the commit adding
a record can carry the table regenerated with it.
"""

from __future__ import annotations

import argparse
import json
import posixpath
import sys
from collections.abc import Callable, Sequence
from typing import Literal, TextIO

from rollsafe import _git
from rollsafe._files import write_atomic
from rollsafe.config import Config
from rollsafe.errors import EXIT_CHECK_FAILED, ConfigError, DeployingFileError
from rollsafe.history import read_history, write_record
from rollsafe.table import (
    Computed,
    compute,
    leading_without_schema,
    merge_document,
    out_of_order_for,
    read_document,
    render_block,
    row_index,
    rows_to_json,
    unified_diff,
)
from rollsafe.table._plan import plan_upgrade, render_text, to_json
from rollsafe.table._rollback import (
    plan_rollback,
    render_rollback_text,
    rollback_to_json,
    which_rollback,
)
from rollsafe.table._svg import render_svg

Format = Literal["text", "json"]


def _progress(stream: TextIO) -> Callable[[int], None] | None:
    """A progress line on a terminal; nothing in CI logs, where it would only add noise."""
    if not stream.isatty():
        return None

    def show(commits: int) -> None:
        stream.write(f"\rreading history: {commits} commits")
        stream.flush()

    return show


def _clear_progress(stream: TextIO) -> None:
    if stream.isatty():
        stream.write("\r\x1b[K")
        stream.flush()


def _computed(config: Config, err: TextIO) -> Computed:
    try:
        return compute(config, progress=_progress(err))
    finally:
        _clear_progress(err)


def summary(computed: Computed) -> str:
    """One line for humans: what was read and what came out of it."""
    history = computed.history
    versions = len(history.versions)
    text = (
        f"read {history.commits} commits of {history.branch}: {versions} CLs ({history.strategy})"
    )
    if history.strategy == "gerrit":
        skipped = history.skipped
        text += f", {skipped} commit{'' if skipped == 1 else 's'} without a CL skipped"
    before = leading_without_schema(history)
    if before:
        text += f", {before} CL{'' if before == 1 else 's'} before the first migration"
    if computed.records:
        text += f", {len(computed.records)} release records"
    rows = len(computed.rows)
    return text + f"; {rows} row" + ("" if rows == 1 else "s")


def release_table(
    config: Config,
    *,
    check: bool = False,
    fmt: Format = "text",
    svg: bool = True,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Write the table into the DEPLOYING file (and its picture), or with ``check`` compare them.

    Returns 0, or `EXIT_CHECK_FAILED` with a unified diff on ``out`` when
    ``check`` finds a file stale (nothing is written then).  ``fmt="json"``
    prints the rows for other tools instead of writing the files.  ``svg``
    off (``--no-svg``) leaves the picture out of the table and alone on disk.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    computed = _computed(config, err)
    if fmt == "json":
        # One string, one line: `json.dump` to a stream and any indent use the json
        # module's pure-Python encoder, several times slower than `dumps`' C encoder
        # on the 50,000 CLs of a large history (the bytes are the same).
        out.write(json.dumps(_table_json(computed)) + "\n")
        if not check:
            return 0
    outputs = _outputs(config, computed, svg=svg)
    stale = [(name, old, new) for name, old, new in outputs if old != new]
    if fmt == "json":
        if not stale:
            return 0
        err.write("".join(unified_diff(old, new, file=name) for name, old, new in stale))
        _stale(stale, err)
        return EXIT_CHECK_FAILED
    print(summary(computed), file=out)
    if check:
        if not stale:
            print(f"{_names(outputs)} up to date", file=out)
            return 0
        out.write("".join(unified_diff(old, new, file=name) for name, old, new in stale))
        _stale(stale, err)
        return EXIT_CHECK_FAILED
    if not stale:
        print(f"{_names(outputs)} up to date", file=out)
        return 0
    _git.require_work_tree(config.repo, writing=config.deploying)
    # The picture first: the DEPLOYING file that links it is the last thing written.
    for name, _old, new in sorted(stale, key=lambda item: item[0] == config.deploying):
        try:
            write_atomic(config.path(name), new)
        except OSError as exc:
            raise DeployingFileError(
                f"cannot write: {exc.strerror}",
                where=name,
                fix="check the folder's permissions; the old file is left as it was",
            ) from exc
        print(f"wrote {name}", file=out)
    return 0


def _names(outputs: Sequence[tuple[str, str | None, str]]) -> str:
    names = [name for name, _old, _new in outputs]
    return names[0] + " is" if len(names) == 1 else " and ".join(names) + " are"


def _outputs(config: Config, computed: Computed, *, svg: bool) -> list[tuple[str, str | None, str]]:
    """``(path, current text, wanted text)`` of the DEPLOYING file and its picture."""
    picture = config.picture if svg else None
    link = None
    if picture is not None:
        link = posixpath.relpath(picture, posixpath.dirname(config.deploying) or ".")
    existing = read_document(config.path(config.deploying), shown_as=config.deploying)
    block = render_block(
        computed.rows,
        strategy=computed.history.strategy,
        released_from=config.releases.rstrip("/") if computed.records else None,
        picture=link,
    )
    outputs = [(config.deploying, existing, merge_document(existing, block, file=config.deploying))]
    if picture is not None:
        current = read_document(config.path(picture), shown_as=picture)
        outputs.append((picture, current, render_svg(computed.rows)))
    return outputs


def _stale(stale: Sequence[tuple[str, str | None, str]], err: TextIO) -> None:
    print(
        f"rollsafe: {_names(stale)} stale (the diff above shows what would change): "
        "run `rollsafe release-table` and commit the result",
        file=err,
    )


def _table_json(computed: Computed) -> dict[str, object]:
    history = computed.history
    return {
        "branch": history.branch,
        "tip": history.tip,
        "strategy": history.strategy,
        "folder": history.folder,
        "commits": history.commits,
        "cls": len(history.versions),
        "skipped": history.skipped,
        "before_first_migration": leading_without_schema(history),
        "released_only": bool(computed.records),
        "releases": [record.cl for record in computed.records],
        "rows": rows_to_json(computed.rows),
    }


def which(config: Config, cl: str, *, fmt: Format = "text", out: TextIO | None = None) -> int:
    """Print the row, schema, commit and landing date of one CL."""
    out = out or sys.stdout
    computed = _computed(config, sys.stderr)
    version = computed.history.find(cl)
    index = row_index(computed.rows)
    row_id = index.get(version.commit)
    released = computed.released
    entries = out_of_order_for(computed.rows, version)
    landed = version.date.isoformat().replace("+00:00", "Z")
    if fmt == "json":
        data = {
            "cl": version.cl,
            "number": version.number,
            "commit": version.commit,
            "landed": landed,
            "subject": version.subject,
            "position": version.position,
            "schema": version.schema,
            "row": row_id,
            "released": None if released is None else version.cl in released,
            "out_of_order": [entry.sentence() for entry in entries],
            "rollback": (
                None
                if row_id is None
                else {
                    "mode": computed.rows[row_id].rollback,
                    "inferred": computed.rows[row_id].rollback_inferred,
                    "reasons": list(computed.rows[row_id].rollback_reasons),
                    "how": which_rollback(computed.rows, version),
                }
            ),
        }
        json.dump(data, out, indent=2)
        out.write("\n")
        return 0
    if row_id is not None:
        row = computed.rows[row_id]
        where = f"{row_id} (schema range {row.schema_range()}, CL range {row.cl_range()})"
    elif version.schema is None:
        where = "none (it landed before the first migration)"
    else:
        where = "none (not released: the rows list released CLs only)"
    lines = [
        f"CL {version.cl}",
        f"  row:     {where}",
        f"  schema:  {'none' if version.schema is None else version.schema}",
        f"  commit:  {version.commit}",
        f"  landed:  {landed}",
        f"  subject: {version.subject}",
    ]
    lines += [f"  note:    {entry.sentence()}" for entry in entries]
    back = which_rollback(computed.rows, version)
    if back is not None:
        lines.append(f"  rollback: {back}")
    print("\n".join(lines), file=out)
    return 0


def upgrade_plan(
    config: Config,
    start: str,
    target: str,
    *,
    offline: bool = False,
    allow_restore: bool = False,
    fmt: Format = "text",
    out: TextIO | None = None,
) -> int:
    """Print the steps from CL ``start`` to CL ``target`` (text or JSON), either way.

    A ``target`` that landed before ``start`` gives a rollback plan
    (`plan_rollback`); one that ends at a restore it may not plan past
    (without ``allow_restore``) returns `EXIT_CHECK_FAILED`, so a script
    never takes a cut plan for a whole one.  With release records,
    ``start`` and ``target`` count as released even when they have no
    record yet, so a release candidate can be planned.
    """
    out = out or sys.stdout
    computed = _computed(config, sys.stderr)
    first = computed.history.find(start)
    last = computed.history.find(target)
    rows = computed.rows_with((first.cl, last.cl))
    if last.position < first.position:
        if offline:
            raise ConfigError(
                "--offline plans upgrades only",
                where=f"--from {first.cl} --to {last.cl}",
                fix="drop --offline: a rollback plan says which of its steps are offline",
            )
        back = plan_rollback(rows, first, last, allow_restore=allow_restore)
        _print_plan(out, fmt, rollback_to_json(back), lambda: render_rollback_text(back))
        return EXIT_CHECK_FAILED if back.stopped else 0
    plan = plan_upgrade(rows, first, last, offline=offline)
    _print_plan(out, fmt, to_json(plan), lambda: render_text(plan))
    return 0


def _print_plan(out: TextIO, fmt: Format, data: dict[str, object], text: Callable[[], str]) -> None:
    """A plan as indented JSON or as its text, either way."""
    if fmt == "json":
        json.dump(data, out, indent=2)
        out.write("\n")
    else:
        out.write(text())


def release(config: Config, cl: str, *, out: TextIO | None = None) -> int:
    """Write the release record of ``cl`` (``releases/<CL>.toml``); never replaces one."""
    out = out or sys.stdout
    history = read_history(config)
    path = write_record(config, history, cl)
    version = history.find(cl)
    shown = path.relative_to(config.repo).as_posix()
    schema = "none" if version.schema is None else str(version.schema)
    print(
        f"wrote {shown}: CL {version.cl}, commit {version.commit[:12]}, schema {schema}, "
        f"{len(version.migrations)} migration files",
        file=out,
    )
    print("next: run `rollsafe release-table` and commit the record with the table", file=out)
    return 0


# -- handlers (`rollsafe.commands._spec`): parsed flags in, an exit code out -------------------


def handle_release_table(config: Config, args: argparse.Namespace) -> int:
    return release_table(config, check=args.check, fmt=args.fmt, svg=not args.no_svg)


def handle_which(config: Config, args: argparse.Namespace) -> int:
    return which(config, args.cl, fmt=args.fmt)


def handle_upgrade_plan(config: Config, args: argparse.Namespace) -> int:
    return upgrade_plan(
        config,
        args.start,
        args.target,
        offline=args.offline,
        allow_restore=args.allow_restore,
        fmt=args.fmt,
    )


def handle_release(config: Config, args: argparse.Namespace) -> int:
    return release(config, args.cl)
