"""Tests for rollsafe.migrate._catalogue: file names, pairs and directives."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollsafe.errors import CatalogueError
from rollsafe.migrate._catalogue import (
    Catalogue,
    Directives,
    catalogue_from_files,
    load_catalogue,
    parse_directives,
    parse_file_name,
    read_text,
    versions_of,
)

REPOSITORY = Path(__file__).resolve().parent.parent


def folder(**files: str) -> dict[str, str]:
    """``{"1_a.up.sql": text}`` -> ``{"migrations/1_a.up.sql": text}``."""
    return {f"migrations/{name}": text for name, text in files.items()}


def build(files: dict[str, str]) -> Catalogue:
    return catalogue_from_files("migrations", files)


# ---------------------------------------------------------------------------
# Valid folders


def test_pairs_sorted_by_version_with_directives() -> None:
    catalogue = build(
        {
            "migrations/10_b.up.sql": "-- compat: offline\n-- note: stop first\nALTER TABLE t;\n",
            "migrations/10_b.down.sql": "ALTER TABLE t;\n",
            "migrations/2_a.up.sql": "-- compat: live\nCREATE TABLE t ();\n",
            "migrations/2_a.down.sql": "DROP TABLE t;\n",
        }
    )
    assert catalogue.versions == (2, 10)
    assert catalogue.head == 10
    assert len(catalogue) == 2
    first, second = catalogue
    assert (first.name, first.up_path, first.down_path) == (
        "2_a",
        "migrations/2_a.up.sql",
        "migrations/2_a.down.sql",
    )
    assert first.directives == Directives(compat="live", compat_line=1)
    assert second.directives.compat == "offline"
    assert second.directives.note == "stop first"
    assert second.down_sql == "ALTER TABLE t;\n"
    assert catalogue.get(10) is second
    assert catalogue.get(3) is None
    assert 2 in catalogue and 3 not in catalogue and "2" not in catalogue


def test_version_zero_is_a_real_version() -> None:
    catalogue = build(folder(**{"0_init.up.sql": "SELECT 1;\n", "0_init.down.sql": "-"}))
    assert catalogue.versions == (0,)
    assert catalogue.head == 0
    assert 0 in catalogue


def test_empty_folder_has_no_head() -> None:
    catalogue = build({})
    assert catalogue.head is None and catalogue.versions == ()


def test_up_without_down_is_an_irreversible_migration() -> None:
    (migration,) = build(folder(**{"3_final.up.sql": "DROP TABLE x;\n"}))
    assert not migration.reversible
    assert migration.down_path is None and migration.down_sql is None


def test_non_sql_files_and_sub_folders_are_ignored() -> None:
    catalogue = build(
        {
            "migrations/README.md": "# how to",
            "migrations/sub/7_x.up.sql": "not read",
            "migrations/1_a.up.sql": "SELECT 1;\n",
        }
    )
    assert catalogue.versions == (1,)


def test_folder_at_the_repository_root() -> None:
    catalogue = catalogue_from_files(".", {"1_a.up.sql": "SELECT 1;\n", "db/2_b.up.sql": "x"})
    assert catalogue.versions == (1,)


def test_parse_file_name() -> None:
    parsed = parse_file_name("migrations/000012_add-things_2.down.sql")
    assert parsed is not None
    assert (parsed.version, parsed.title, parsed.direction) == (12, "add-things_2", "down")
    assert parse_file_name("notes.txt") is None


# ---------------------------------------------------------------------------
# Malformed folders: one error naming the file (and line)


@pytest.mark.parametrize(
    "name",
    ["1_a.sql", "a_b.up.sql", "-1_x.up.sql", "1_a.UP.sql", "1.up.sql", "1_a.upx.sql"],
)
def test_names_golang_migrate_ignores_are_warnings_not_migrations(name: str) -> None:
    catalogue = build(folder(**{name: "SELECT 1;\n"}))
    assert len(catalogue) == 0
    assert [w.file for w in catalogue.warnings] == [f"migrations/{name}"]
    assert "golang-migrate ignores" in catalogue.warnings[0].what


@pytest.mark.parametrize(
    ("name", "version", "title"),
    [
        ("0002_1.7.0_schema.up.sql", 2, "1.7.0_schema"),
        ("1_x.up.txt", 1, "x"),
        ("8_x.up.SQL", 8, "x"),
        ("3_.up.sql", 3, ""),
        ("4_a+b c.up.sql", 4, "a+b c"),
        ("5_a.down.b.up.sql", 5, "a.down.b"),
        ("6_x.up.", 6, "x"),
    ],
)
def test_names_are_read_as_golang_migrates_parser_reads_them(
    name: str, version: int, title: str
) -> None:
    parsed = parse_file_name(name)
    assert parsed is not None and (parsed.version, parsed.title) == (version, title)
    catalogue = build(folder(**{name: "SELECT 1;\n"}))
    assert catalogue.versions == (version,) and catalogue.warnings == ()


def test_a_version_above_bigint_is_refused_in_one_line() -> None:
    with pytest.raises(CatalogueError, match="above 2\\^63-1") as caught:
        build(folder(**{"1_a.up.sql": "x", "9223372036854775808_huge.up.sql": "y"}))
    assert caught.value.file == "migrations/9223372036854775808_huge.up.sql"
    assert build(folder(**{"9223372036854775807_max.up.sql": "y"})).head == 2**63 - 1


def test_a_version_beyond_uint64_is_skipped_as_golang_migrate_skips_it() -> None:
    catalogue = build(folder(**{"99999999999999999999_huge.up.sql": "y"}))
    assert len(catalogue) == 0
    assert "uint64" in catalogue.warnings[0].what


def test_a_byte_order_mark_is_refused_by_catalogue_and_directives() -> None:
    for name in ("1_a.up.sql", "1_a.down.sql"):
        files = {"1_a.up.sql": "SELECT 1;\n", "1_a.down.sql": "SELECT 0;\n"}
        files[name] = "\ufeff" + files[name]
        with pytest.raises(CatalogueError, match="byte-order mark") as caught:
            build(folder(**files))
        assert (caught.value.file, caught.value.line) == (f"migrations/{name}", 1)
    with pytest.raises(CatalogueError, match="byte-order mark"):
        parse_directives("\ufeff-- compat: offline\nSELECT 1;\n", file="f.sql")


def test_duplicate_version() -> None:
    with pytest.raises(CatalogueError, match="duplicate version 1: also `migrations/001_b") as e:
        build(folder(**{"001_b.up.sql": "x", "1_a.up.sql": "y"}))
    assert e.value.file == "migrations/1_a.up.sql"


def test_duplicate_down_version() -> None:
    with pytest.raises(CatalogueError, match="duplicate version 4"):
        build(folder(**{"4_a.up.sql": "x", "4_a.down.sql": "y", "04_a.down.sql": "z"}))


def test_down_without_up() -> None:
    with pytest.raises(CatalogueError, match="down file without an up file for version 5") as e:
        build(folder(**{"5_gone.down.sql": "x"}))
    assert e.value.file == "migrations/5_gone.down.sql"
    assert e.value.fix is not None and "5_gone.up.sql" in e.value.fix


def test_a_title_mismatch_is_a_warning_as_golang_migrate_pairs_by_version() -> None:
    catalogue = build(folder(**{"6_one.up.sql": "x", "6_other.down.sql": "y"}))
    migration = catalogue.get(6)
    assert migration is not None and migration.down_path == "migrations/6_other.down.sql"
    assert [w.file for w in catalogue.warnings] == ["migrations/6_other.down.sql"]


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("-- compat: live\n-- owner: me\n", 2, "unknown directive `owner`"),
        ("-- compat: live\n\n-- compat: offline\n", 3, r"duplicate `compat` directive \(first on"),
        ("-- compat: sometimes\n", 1, "bad compat value `sometimes`"),
        ("-- note: a\n-- note: b\n", 2, "duplicate `note` directive"),
        ("-- note:\n", 1, "empty note"),
        ("-- lint: skip drop-table\n", 1, "bad lint directive `skip drop-table`"),
        ("-- lint: ignore\n", 1, "bad lint directive `ignore`"),
        ("-- lint: ignore Drop_Table\n", 1, "bad rule id `Drop_Table`"),
        ("-- lint: ignore drop-table,\n", 1, "bad rule id ``"),
        ("-- lint: ignore a\n-- lint: ignore b\n", 2, "duplicate `lint` directive"),
    ],
)
def test_bad_directives_name_file_and_line(text: str, line: int, what: str) -> None:
    with pytest.raises(CatalogueError, match=what) as caught:
        build(folder(**{"1_a.up.sql": text + "SELECT 1;\n"}))
    assert (caught.value.file, caught.value.line) == ("migrations/1_a.up.sql", line)
    assert str(caught.value).startswith(f"migrations/1_a.up.sql:{line}: ")


def test_directives_stop_at_the_first_statement_and_prose_is_ignored() -> None:
    text = (
        "-- Adds the table.  TODO: index later\n"
        "-- https://tracker.example/ISSUE-12\n"
        "--compat:live\n"
        "-- lint: ignore drop-table, rename-column\n"
        "\n"
        "CREATE TABLE t ();\n"
        "-- owner: nobody reads this\n"
    )
    directives = parse_directives(text, file="f.sql")
    assert directives.compat == "live" and directives.compat_line == 3
    assert directives.lint_ignore == frozenset({"drop-table", "rename-column"})
    assert directives.lint_ignore_line == 4
    assert directives.note is None


# ---------------------------------------------------------------------------
# The folder on disk


def test_load_catalogue_reads_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "db" / "migrations"
    root.mkdir(parents=True)
    (root / "1_a.up.sql").write_text("-- compat: live\nSELECT 1;\n", encoding="utf-8")
    (root / "1_a.down.sql").write_text("SELECT 0;\n", encoding="utf-8")
    (root / "notes.md").write_text("prose", encoding="utf-8")
    (root / "old").mkdir()
    (root / "old" / "9_z.up.sql").write_text("not read", encoding="utf-8")
    catalogue = load_catalogue(tmp_path, "db/migrations")
    assert catalogue.folder == "db/migrations"
    (migration,) = catalogue
    assert (migration.up_path, migration.down_path) == (
        "db/migrations/1_a.up.sql",
        "db/migrations/1_a.down.sql",
    )


def test_load_catalogue_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="migrations folder not found") as caught:
        load_catalogue(tmp_path, "migrations")
    assert caught.value.file == "migrations"
    assert caught.value.fix is not None and "--migrations" in caught.value.fix


def test_load_catalogue_rejects_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "1_a.up.sql").write_bytes(b"SELECT 'caf\xe9';\n")
    with pytest.raises(CatalogueError, match=r"not UTF-8 text \(invalid") as caught:
        load_catalogue(tmp_path, "migrations")
    assert caught.value.file == "migrations/1_a.up.sql"


def test_read_text_reports_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="cannot read") as caught:
        read_text(tmp_path, shown_as="migrations/1_a.up.sql")  # a folder cannot be read
    assert caught.value.file == "migrations/1_a.up.sql"


def test_this_repository_s_example_folder_parses() -> None:
    catalogue = load_catalogue(REPOSITORY, "migrations")
    assert len(catalogue) >= 6
    assert list(catalogue.versions) == sorted(catalogue.versions)


# ---------------------------------------------------------------------------
# versions_of (history's lenient view)


def test_versions_of_ignores_junk_down_files_and_other_folders() -> None:
    paths = [
        "migrations/1_a.up.sql",
        "migrations/1_a.down.sql",
        "migrations/2 bad.up.sql",
        "migrations/sub/3_c.up.sql",
        "other/4_d.up.sql",
        "migrations/5_e.up.sql",
    ]
    assert versions_of(paths, "migrations") == {1, 5}
    assert versions_of(["6_f.up.sql", "x/7_g.up.sql"], ".") == {6}
    assert versions_of(["6_f.up.sql"], "") == {6}


def test_transaction_none_marks_a_file_to_run_outside_a_transaction() -> None:
    directives = parse_directives(
        "-- compat: live\n-- transaction: none\nCREATE INDEX CONCURRENTLY i ON t (a);\n", file="f"
    )
    assert directives.no_transaction
    assert not parse_directives("-- compat: live\nSELECT 1;\n", file="f").no_transaction


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("-- transaction: some\n", 1, "bad transaction value `some`"),
        ("-- transaction: none\n-- transaction: none\n", 2, "duplicate `transaction` directive"),
        ("-- rollback: restore\n", 1, "bad rollback value `restore`"),
        ("-- rollback: live\n-- rollback: offline\n", 2, "duplicate `rollback` directive"),
    ],
)
def test_bad_transaction_or_rollback_value_names_the_line(
    text: str, line: int, message: str
) -> None:
    with pytest.raises(CatalogueError) as caught:
        parse_directives(text, file="migrations/1_a.up.sql")
    assert caught.value.line == line
    assert message in str(caught.value)


def test_rollback_directive_is_read_with_its_line() -> None:
    directives = parse_directives(
        "-- compat: live\n-- rollback: live\nALTER TABLE t ADD COLUMN c text;\n", file="f"
    )
    assert (directives.rollback, directives.rollback_line) == ("live", 2)
    assert parse_directives("-- rollback: offline\nSELECT 1;\n", file="f").rollback == "offline"
    assert parse_directives("SELECT 1;\n", file="f").rollback is None
