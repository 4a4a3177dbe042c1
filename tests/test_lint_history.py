"""History hazards over in-memory histories: each hazard fails one way and passes the other.

`rollsafe.lint.lint_history` is pure over `History` and release records, so
these tests build the folder states by hand (path -> blob id per code version)
and check which CL and commit each finding names.  The same hazards are
exercised end to end on real git repositories in ``test_commands_lint.py``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta

from rollsafe.history import CodeVersion, History, ReleaseRecord
from rollsafe.lint import Finding, blob_id, lint_catalogue, lint_history
from rollsafe.migrate import catalogue_from_files, versions_of

State = Mapping[str, str]


def up(version: int, blob: str, title: str = "m") -> dict[str, str]:
    return {f"migrations/{version}_{title}.up.sql": blob}


def pair(version: int, blob: str, title: str = "m") -> dict[str, str]:
    return {**up(version, blob, title), f"migrations/{version}_{title}.down.sql": f"d{version}"}


def commit_of(cl: int) -> str:
    return f"{cl:040x}"


def history(*states: State, first_cl: int = 100) -> History:
    """One code version per state; CL numbers count up from ``first_cl``."""
    versions = tuple(
        CodeVersion(
            cl=str(first_cl + index),
            number=first_cl + index,
            commit=commit_of(first_cl + index),
            date=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=index),
            subject=f"change {index}",
            position=index,
            schema=max(versions_of(state, "migrations"), default=None),
            migrations=state,
            changes=(),
        )
        for index, state in enumerate(states)
    )
    return History(
        folder="migrations",
        branch="main",
        tip=versions[-1].commit,
        strategy="gerrit",
        versions=versions,
        skipped=0,
        commits=len(versions),
    )


def record(past: History, cl: str) -> ReleaseRecord:
    version = past.find(cl)
    return ReleaseRecord(
        cl=cl,
        commit=version.commit,
        date=version.date.isoformat(),
        schema=version.schema,
        migrations=dict(version.migrations),
        path=f"releases/{cl}.toml",
    )


def rules(found: tuple[Finding, ...]) -> list[tuple[str, str, str | None]]:
    return [(f.rule, f.severity, f.cl) for f in found]


# ------------------------------------------------------------------ edited after shipping


def test_edit_after_a_later_migration_landed_is_an_error_naming_cl_and_commit() -> None:
    past = history(pair(1, "a"), {**pair(1, "a"), **pair(2, "b")}, {**pair(1, "A"), **pair(2, "b")})
    (found,) = lint_history(past)
    assert rules((found,)) == [("shipped-migration-edited", "error", "102")]
    assert found.commit == commit_of(102)
    assert found.file == "migrations/1_m.up.sql"
    assert "CL 102" in found.message and commit_of(102)[:12] in found.message
    assert "version 2 landed on top of it" in found.message


def test_edit_of_the_newest_migration_before_anything_landed_on_it_is_fine() -> None:
    past = history(pair(1, "a"), pair(1, "A"), {**pair(1, "A"), **pair(2, "b")})
    assert lint_history(past) == ()


def test_edit_after_a_release_record_shipped_it() -> None:
    past = history(pair(1, "a"), pair(1, "A"))
    (found,) = lint_history(past, [record(past, "100")])
    assert rules((found,)) == [("shipped-migration-edited", "error", "101")]
    assert "release record releases/100.toml" in found.message


def test_with_records_only_released_files_count_as_shipped() -> None:
    # Version 1 was never released: editing it under version 2 is not a hazard with records.
    past = history(
        pair(0, "z"),
        {**pair(0, "z"), **pair(1, "a"), **pair(2, "b")},
        {**pair(0, "z"), **pair(1, "A"), **pair(2, "b")},
    )
    assert lint_history(past, [record(past, "100")]) == ()
    assert rules(lint_history(past)) == [("shipped-migration-edited", "error", "102")]


def test_an_edit_reverted_later_is_repaired() -> None:
    past = history(pair(1, "a"), pair(1, "A"), pair(1, "a"))
    assert lint_history(past, [record(past, "100")]) == ()


def test_every_edit_of_a_shipped_file_is_named_with_its_cl_and_commit() -> None:
    past = history(pair(1, "a"), pair(1, "A"), pair(1, "A"), pair(1, "AA"), pair(1, "AAA"))
    found = lint_history(past, [record(past, "100")])
    assert rules(found) == [
        ("shipped-migration-edited", "error", cl) for cl in ("101", "103", "104")
    ]
    assert [f.commit for f in found] == [commit_of(101), commit_of(103), commit_of(104)]
    assert [f.message.split(" after")[0].split("by ")[1] for f in found] == [
        f"CL {cl} (commit {commit_of(cl)[:12]})" for cl in (101, 103, 104)
    ]
    assert "edit 2 of 3" in found[1].message


def test_an_edit_shipped_by_a_later_record_is_still_a_divergence() -> None:
    past = history(pair(1, "a"), pair(1, "A"), pair(1, "A"))
    found = lint_history(past, [record(past, "100"), record(past, "101")])
    assert rules(found) == [("shipped-migration-edited", "error", "101")]


def test_comment_only_edit_is_info_when_texts_are_available() -> None:
    texts = {
        "a": "ALTER TABLE machines ADD COLUMN zone text;\n",
        "A": "-- note: zones\nALTER TABLE machines\n  ADD COLUMN zone text;\n",
        "B": "ALTER TABLE machines ADD COLUMN zone varchar(10);\n",
    }
    asked: list[Collection[str]] = []

    def read(ids: Collection[str]) -> Mapping[str, str]:
        asked.append(set(ids))
        return {i: texts[i] for i in ids}

    comment_only = history(pair(1, "a"), pair(1, "A"))
    found = lint_history(comment_only, [record(comment_only, "100")], read_texts=read)
    assert rules(found) == [("shipped-migration-edited", "info", "101")]
    assert asked == [{"a", "A"}]
    real = history(pair(1, "a"), pair(1, "B"))
    found = lint_history(real, [record(real, "100")], read_texts=read)
    assert rules(found) == [("shipped-migration-edited", "error", "101")]


def test_down_file_edit_after_shipping_is_a_warning() -> None:
    before = {**pair(1, "a"), **pair(2, "b")}
    after = {**before, "migrations/1_m.down.sql": "other"}
    found = lint_history(history(before, after))
    assert rules(found) == [("shipped-migration-edited", "warning", "101")]
    assert found[0].file == "migrations/1_m.down.sql"
    assert (
        lint_history(
            history(pair(1, "a"), {"migrations/1_m.up.sql": "a", "migrations/1_m.down.sql": "x"})
        )
        == ()
    )


def test_hazard_acknowledged_by_an_ignore_in_the_current_file() -> None:
    past = history(pair(1, "a"), pair(1, "A"))
    catalogue = catalogue_from_files(
        "migrations",
        {"migrations/1_m.up.sql": "-- lint: ignore shipped-migration-edited\nSELECT 1;"},
    )
    assert lint_history(past, [record(past, "100")], catalogue=catalogue) == ()


# ------------------------------------------------------------------ out of order


def test_version_added_below_a_shipped_one_is_an_error() -> None:
    past = history(
        pair(1, "a"),
        {**pair(1, "a"), **pair(3, "c")},
        {**pair(1, "a"), **pair(2, "b"), **pair(3, "c")},
    )
    (found,) = lint_history(past)
    assert rules((found,)) == [("migration-out-of-order", "error", "102")]
    assert found.file == "migrations/2_m.up.sql" and "below version 3" in found.message


def test_version_added_above_every_shipped_one_is_fine() -> None:
    past = history(
        pair(1, "a"),
        {**pair(1, "a"), **pair(3, "c")},
        {**pair(1, "a"), **pair(3, "c"), **pair(4, "d")},
    )
    assert lint_history(past) == ()


def test_with_records_a_landed_but_unreleased_version_does_not_count() -> None:
    past = history(
        pair(1, "a"),
        {**pair(1, "a"), **pair(3, "c")},
        {**pair(1, "a"), **pair(2, "b"), **pair(3, "c")},
    )
    assert lint_history(past, [record(past, "100")]) == ()
    assert rules(lint_history(past, [record(past, "101")])) == [
        ("migration-out-of-order", "error", "102")
    ]


def test_out_of_order_can_be_acknowledged_in_the_file() -> None:
    past = history(
        pair(1, "a"),
        {**pair(1, "a"), **pair(3, "c")},
        {**pair(1, "a"), **pair(2, "b"), **pair(3, "c")},
    )
    files = {
        "migrations/2_m.up.sql": "-- lint: ignore migration-out-of-order\nSELECT 1;",
        "migrations/3_m.up.sql": "SELECT 1;",
    }
    assert lint_history(past, catalogue=catalogue_from_files("migrations", files)) == ()


# ------------------------------------------------------------------ deleted, renamed, vanished


def test_deleting_a_shipped_migration_is_an_error() -> None:
    past = history({**pair(1, "a"), **pair(2, "b")}, pair(2, "b"))
    (found,) = lint_history(past)
    assert rules((found,)) == [("migration-deleted", "error", "101")]
    assert found.file == "migrations/1_m.up.sql"


def test_deleting_an_unshipped_migration_is_fine_and_restoring_repairs() -> None:
    assert lint_history(history({**pair(1, "a"), **pair(2, "b")}, pair(1, "a"))) == ()
    restored = history(
        {**pair(1, "a"), **pair(2, "b")}, pair(2, "b"), {**pair(1, "a"), **pair(2, "b")}
    )
    assert lint_history(restored) == ()


def test_renaming_a_shipped_migration_to_another_version_is_an_error() -> None:
    past = history({**pair(1, "a"), **pair(2, "b")}, {**pair(5, "a"), **pair(2, "b")})
    (found,) = lint_history(past)
    assert rules((found,)) == [("migration-renamed", "error", "101")]
    assert "renamed to migrations/5_m.up.sql" in found.message


def test_changing_only_the_title_is_fine() -> None:
    past = history({**pair(1, "a"), **pair(2, "b")}, {**pair(1, "a", "better"), **pair(2, "b")})
    assert lint_history(past) == ()


def test_folder_vanishing_is_one_error() -> None:
    past = history({**pair(1, "a"), **pair(2, "b")}, {})
    (found,) = lint_history(past)
    assert rules((found,)) == [("folder-vanished", "error", "101")]
    assert (
        lint_history(
            history({**pair(1, "a"), **pair(2, "b")}, {}, {**pair(1, "a"), **pair(2, "b")})
        )
        == ()
    )


# ------------------------------------------------------------------ work tree and records


def test_uncommitted_changes_are_the_last_step() -> None:
    past = history({**pair(1, "a"), **pair(2, "b")})
    found = lint_history(past, current={**pair(1, "EDITED"), **pair(2, "b")})
    assert rules(found) == [("shipped-migration-edited", "error", None)]
    assert found[0].commit is None and "work tree" in found[0].message
    assert lint_history(past, current=dict(past.versions[-1].migrations)) == ()


def test_record_of_a_commit_not_on_the_branch_counts_from_the_start() -> None:
    past = history(pair(1, "a"), pair(1, "A"))
    foreign = ReleaseRecord(
        "v1", "f" * 40, "2024-01-01T00:00:00Z", 1, up(1, "a"), "releases/v1.toml"
    )
    assert rules(lint_history(past, [foreign])) == [("shipped-migration-edited", "error", "101")]


def test_a_single_version_has_no_history_hazards() -> None:
    assert lint_history(history(pair(1, "a"))) == ()


def test_blob_id_matches_git() -> None:
    # `printf 'hello\n' | git hash-object --stdin`
    assert blob_id(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert len(blob_id(b"hello\n", like="0" * 64)) == 64


# ------------------------------------------------------------------ missing down files


def test_missing_down_names_the_cl_that_added_the_up_file() -> None:
    files = {"migrations/1_m.up.sql": "SELECT 1;"}
    past = history({}, up(1, "a"))
    (found,) = lint_catalogue(catalogue_from_files("migrations", files), history=past)
    assert (found.rule, found.severity, found.cl, found.commit) == (
        "missing-down",
        "warning",
        "101",
        commit_of(101),
    )


def test_missing_down_names_the_cl_that_deleted_the_down_file() -> None:
    files = {"migrations/1_m.up.sql": "SELECT 1;"}
    past = history(pair(1, "a"), up(1, "a"))
    (found,) = lint_catalogue(catalogue_from_files("migrations", files), history=past)
    assert found.cl == "101" and "deleted" in found.message
    with_down = {**files, "migrations/1_m.down.sql": "SELECT 1;"}
    assert lint_catalogue(catalogue_from_files("migrations", with_down), history=past) == ()
