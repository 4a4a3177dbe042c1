"""SQL rules, directives and live/offline inference, in memory (no files, no git).

Every breaking and risky rule has a failing and a passing example; the
passing ones are the safe way to do the same thing, so a rule that fires too
eagerly fails here as surely as one that misses.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rollsafe.lint import (
    BREAKING,
    RULES,
    CompatVerdict,
    Finding,
    LintReport,
    compat_of,
    lint_catalogue,
    lint_migration,
    rollback_of,
)
from rollsafe.lint._sql import analyse
from rollsafe.lint._sqlparse import statements_key
from rollsafe.migrate import Migration, catalogue_from_files

#: rule id -> (SQL that fires it, SQL doing the same job safely).
CASES: dict[str, tuple[str, str]] = {
    "drop-table": (
        "DROP TABLE machines;",
        "CREATE TABLE scratch (id bigint);\nDROP TABLE scratch;",
    ),
    "drop-column": (
        "ALTER TABLE machines DROP COLUMN region;",
        "ALTER TABLE machines ADD COLUMN zone text;\nALTER TABLE machines DROP COLUMN zone;",
    ),
    "drop-type": (
        "DROP TYPE work_state;",
        "CREATE TYPE scratch AS ENUM ('a');\nDROP TYPE scratch;",
    ),
    "drop-enum-value": (
        "ALTER TYPE work_state RENAME TO work_state_old;\n"
        "CREATE TYPE work_state AS ENUM ('queued', 'running', 'done');\n"
        "ALTER TABLE work_items ALTER COLUMN state TYPE work_state "
        "USING state::text::work_state;\n"
        "DROP TYPE work_state_old;",
        "ALTER TYPE work_state ADD VALUE 'paused';",
    ),
    "rename-table": (
        "ALTER TABLE machines RENAME TO hosts;",
        "ALTER TABLE machines RENAME TO hosts;\nCREATE VIEW machines AS SELECT * FROM hosts;",
    ),
    "rename-column": (
        "ALTER TABLE machines RENAME COLUMN region TO zone;",
        "CREATE TABLE scratch (a int);\nALTER TABLE scratch RENAME COLUMN a TO b;",
    ),
    "add-not-null-column": (
        "ALTER TABLE machines ADD COLUMN arch text NOT NULL;",
        "ALTER TABLE machines ADD COLUMN arch text NOT NULL DEFAULT 'x86_64';",
    ),
    "set-not-null": (
        "ALTER TABLE machines ALTER COLUMN region SET NOT NULL;",
        "ALTER TABLE machines ADD COLUMN zone text DEFAULT 'a';\n"
        "ALTER TABLE machines ALTER COLUMN zone SET NOT NULL;",
    ),
    "change-column-type": (
        "ALTER TABLE machines ALTER COLUMN hostname TYPE varchar(50);",
        "CREATE TABLE scratch (a int);\nALTER TABLE scratch ALTER COLUMN a TYPE bigint;",
    ),
    "add-constraint": (
        "ALTER TABLE machines ADD CONSTRAINT host_len CHECK (length(hostname) > 0) NOT VALID;",
        "CREATE TABLE scratch (a int);\nALTER TABLE scratch ADD CONSTRAINT pos CHECK (a > 0);",
    ),
    "index-not-concurrent": (
        "CREATE INDEX machines_region_idx ON machines (region);",
        "CREATE INDEX CONCURRENTLY machines_region_idx ON machines (region);",
    ),
    "constraint-validates-rows": (
        "ALTER TABLE sessions ADD CONSTRAINT ended CHECK (ended_at >= started_at);",
        "ALTER TABLE sessions ADD CONSTRAINT ended CHECK (ended_at >= started_at) NOT VALID;",
    ),
    "add-column-rewrites-table": (
        "ALTER TABLE machines ADD COLUMN seq bigserial;",
        "ALTER TABLE machines ADD COLUMN seq bigint;",
    ),
    "enum-value-same-transaction": (
        "ALTER TYPE work_state ADD VALUE 'paused';\n"
        "UPDATE work_items SET state = 'paused' WHERE id = 0;",
        "ALTER TYPE work_state ADD VALUE 'paused';\n"
        "UPDATE work_items SET state = 'done' WHERE id = 0;",
    ),
    "not-analysed": (
        "SELECT hostname FROM machines@machines_hostname_key;",
        "SELECT hostname FROM machines;",
    ),
}


def rules_of(sql: str) -> set[str]:
    return {hit.rule for hit in analyse(sql).hits}


def migration(
    up: str, down: str | None = "SELECT 1;", *, header: str = "", version: int = 8
) -> Migration:
    files = {f"migrations/{version}_change.up.sql": header + up}
    if down is not None:
        files[f"migrations/{version}_change.down.sql"] = down
    return catalogue_from_files("migrations", files).migrations[0]


def test_every_sql_rule_has_a_case() -> None:
    sql_rules = {r.id for r in RULES.values() if r.kind in ("breaking", "risky")}
    assert set(CASES) == sql_rules


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_fires_on_the_failing_example(rule: str) -> None:
    assert rule in rules_of(CASES[rule][0])


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_stays_quiet_on_the_safe_example(rule: str) -> None:
    assert rule not in rules_of(CASES[rule][1])


@pytest.mark.parametrize("rule", sorted(CASES))
def test_inference_follows_the_rule_kind(rule: str) -> None:
    failing, passing = CASES[rule]
    verdict = compat_of(migration(failing))
    offline = rule in BREAKING or rule == "not-analysed"
    assert verdict.inferred
    assert (rule in verdict.reasons) is offline
    if offline:
        assert verdict.compat == "offline"
    elif rules_of(failing) == {rule}:
        assert verdict.compat == "live"
    assert rule not in compat_of(migration(passing)).reasons


def test_every_rule_has_why_and_fix_on_one_line() -> None:
    for rule in RULES.values():
        assert rule.why and rule.fix
        assert "\n" not in rule.why + rule.fix
        assert rule.id == rule.id.lower() and " " not in rule.id


def test_findings_report_the_line_of_the_statement_not_of_its_comment() -> None:
    sql = (
        "-- compat: offline\n"
        "CREATE TABLE scratch (id bigint);\n"
        "\n"
        "/* the old column goes */\n"
        "-- second comment\n"
        "ALTER TABLE machines\n"
        "    DROP COLUMN region;\n"
        "ALTER TABLE machines\n"
        "    ADD COLUMN zone text NOT NULL;\n"
    )
    hits = {hit.rule: hit.line for hit in analyse(sql).hits}
    assert hits == {"drop-column": 6, "add-not-null-column": 9}


def test_lines_count_bytes_of_non_ascii_text_correctly() -> None:
    sql = "COMMENT ON TABLE machines IS 'Maschinen \u00fcber größer';\nDROP TABLE machines;\n"
    assert [(h.rule, h.line) for h in analyse(sql).hits] == [("drop-table", 2)]


def test_unparseable_statements_are_reported_one_by_one_and_the_rest_is_analysed() -> None:
    sql = (
        "CREATE TABLE scratch (id STRING PRIMARY KEY);\n"
        "CREATE INDEX i ON machines (region) STORING (hostname);\n"
        "SELECT * FROM machines@primary;\n"
        "ALTER TABLE machines DROP COLUMN region;\n"
    )
    hits = [(h.rule, h.line) for h in analyse(sql).hits]
    # STRING as a plain type name parses (PostgreSQL reads it as a user type).
    assert hits == [("not-analysed", 2), ("not-analysed", 3), ("drop-column", 4)]


def test_unparseable_statement_lines_after_a_multibyte_character() -> None:
    sql = "SELECT 'ü';\nUPSERT INTO machines (id) VALUES (1);\nDROP TABLE sessions;\n"
    assert [(h.rule, h.line) for h in analyse(sql).hits] == [
        ("not-analysed", 2),
        ("drop-table", 3),
    ]


def test_a_file_that_cannot_even_be_split_is_not_analysed() -> None:
    hits = analyse("SELECT 1;\nSELECT 'unterminated;\n").hits
    assert [h.rule for h in hits] == ["not-analysed"]


def test_do_blocks_are_not_analysed() -> None:
    sql = "DO $$ BEGIN EXECUTE 'DROP TABLE machines'; END $$;"
    assert rules_of(sql) == {"not-analysed"}


def test_add_constraint_says_whether_not_valid_was_used() -> None:
    (valid,) = [
        h for h in analyse(CASES["constraint-validates-rows"][0]).hits if h.rule == "add-constraint"
    ]
    (not_valid,) = analyse(CASES["constraint-validates-rows"][1]).hits
    assert "NOT VALID" not in valid.message and "existing rows that violate it" in valid.message
    assert "added NOT VALID" in not_valid.message


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "ALTER TABLE machines ADD CONSTRAINT u UNIQUE (hostname);",
            {"add-constraint", "constraint-validates-rows"},
        ),
        (
            "ALTER TABLE sessions ADD CONSTRAINT fk FOREIGN KEY (machine_id) "
            "REFERENCES machines (id);",
            {"add-constraint", "constraint-validates-rows"},
        ),
        ("CREATE UNIQUE INDEX CONCURRENTLY u ON machines (hostname);", {"add-constraint"}),
        (
            "CREATE UNIQUE INDEX u ON machines (hostname);",
            {"add-constraint", "index-not-concurrent"},
        ),
        ("ALTER TABLE machines ADD CONSTRAINT u UNIQUE USING INDEX u_idx;", set()),
        ("ALTER TABLE machines ADD CONSTRAINT nn NOT NULL region;", {"set-not-null"}),
        ("ALTER TABLE machines VALIDATE CONSTRAINT host_len;", set()),
    ],
)
def test_constraint_forms(sql: str, expected: set[str]) -> None:
    assert rules_of(sql) == expected


@pytest.mark.parametrize(
    "column",
    [
        "id bigserial NOT NULL",
        "n int GENERATED ALWAYS AS IDENTITY NOT NULL",
        "n int NOT NULL GENERATED ALWAYS AS (1) STORED",
        "n int NOT NULL DEFAULT 0",
        "n int",
    ],
)
def test_columns_the_database_fills_are_not_required_columns(column: str) -> None:
    found = rules_of(f"ALTER TABLE machines ADD COLUMN {column};")
    assert "add-not-null-column" not in found
    # Filling serial, identity and stored generated columns rewrites the table.
    assert (found == {"add-column-rewrites-table"}) is (
        " int" not in column or "GENERATED" in column
    )


def test_a_new_primary_key_column_without_default_is_required() -> None:
    assert rules_of("ALTER TABLE machines ADD COLUMN n int PRIMARY KEY;") == {
        "add-not-null-column",
        "constraint-validates-rows",
    }


def test_set_not_null_on_a_column_added_without_default_in_the_same_file() -> None:
    sql = (
        "ALTER TABLE machines ADD COLUMN zone text;\n"
        "UPDATE machines SET zone = 'a';\n"
        "ALTER TABLE machines ALTER COLUMN zone SET NOT NULL;\n"
    )
    (hit,) = analyse(sql).hits
    assert (hit.rule, hit.line) == ("set-not-null", 3)
    assert "old code's inserts omit it" in hit.message
    with_default = sql.replace(
        "UPDATE", "ALTER TABLE machines ALTER COLUMN zone SET DEFAULT 'a';\nUPDATE"
    )
    assert analyse(with_default).hits == ()


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM pg_enum WHERE enumlabel = 'failed';",
        "UPDATE pg_catalog.pg_enum SET enumlabel = 'broken' WHERE enumlabel = 'failed';",
        "ALTER TYPE work_state RENAME VALUE 'failed' TO 'broken';",
        "DROP TYPE work_state;\nCREATE TYPE work_state AS ENUM ('queued');",
    ],
)
def test_other_ways_of_dropping_an_enum_value(sql: str) -> None:
    assert rules_of(sql) == {"drop-enum-value"}


def test_rename_and_recreate_is_reported_once_not_as_type_changes() -> None:
    hits = analyse(CASES["drop-enum-value"][0]).hits
    assert [(h.rule, h.line) for h in hits] == [("drop-enum-value", 2)]
    assert "'queued', 'running', 'done'" in hits[0].message


def test_renaming_a_type_without_recreating_it_drops_the_old_name() -> None:
    assert rules_of("ALTER TYPE work_state RENAME TO job_state;") == {"drop-type"}


def test_changing_a_column_to_a_new_enum_type_is_a_type_change() -> None:
    sql = (
        "CREATE TYPE arch AS ENUM ('x86_64', 'arm64');\n"
        "ALTER TABLE machines ALTER COLUMN arch TYPE arch USING arch::arch;\n"
    )
    assert rules_of(sql) == {"change-column-type"}


def test_replacing_a_view_is_not_dropping_it() -> None:
    assert rules_of("DROP VIEW busy;\nCREATE VIEW busy AS SELECT 1 AS n;") == set()
    assert rules_of("DROP VIEW busy;") == {"drop-table"}
    assert rules_of("DROP TABLE machines;\nCREATE TABLE machines (id bigint);") == {"drop-table"}


def test_dropping_an_index_created_elsewhere_without_concurrently() -> None:
    assert rules_of("DROP INDEX sessions_machine_id_idx;") == {"index-not-concurrent"}
    assert rules_of("DROP INDEX CONCURRENTLY sessions_machine_id_idx;") == set()


def test_enum_value_used_in_a_later_file_is_fine_but_a_new_type_may_use_its_labels() -> None:
    assert rules_of("ALTER TYPE work_state ADD VALUE 'paused';") == set()
    sql = "CREATE TYPE s AS ENUM ('a');\nALTER TYPE s ADD VALUE 'b';\nSELECT 'b'::s;"
    assert rules_of(sql) == set()


def test_an_explicit_commit_makes_a_new_enum_value_usable() -> None:
    sql = "ALTER TYPE work_state ADD VALUE 'paused';\nCOMMIT;\nSELECT 'paused'::work_state;"
    assert rules_of(sql) == set()
    assert rules_of(sql.replace("COMMIT;\n", "")) == {"enum-value-same-transaction"}


def test_schema_qualified_names_match_unqualified_ones() -> None:
    assert rules_of("CREATE TABLE public.t (a int);\nDROP TABLE t;") == set()


def test_the_parse_is_cached_by_text() -> None:
    text = "ALTER TABLE machines DROP COLUMN zone_cache_test;"
    assert analyse(text) is analyse(text)


def test_statements_key_ignores_comments_and_layout_only() -> None:
    base = "ALTER TABLE machines ADD COLUMN arch text DEFAULT 'x86_64';"
    assert statements_key(base) == statements_key(f"-- note: hi\n{base.replace(' ', '  ')}\n")
    assert statements_key(base) != statements_key(base.replace("x86_64", "arm64"))
    assert statements_key("SELECT * FROM t@i") is None


# ------------------------------------------------------------------ verdicts and severities


def test_declared_compat_wins_and_is_not_inferred() -> None:
    assert compat_of(migration("DROP TABLE machines;", header="-- compat: offline\n")) == (
        CompatVerdict("offline", inferred=False, reasons=("drop-table",))
    )
    assert compat_of(migration("SELECT 1;", header="-- compat: offline\n")) == CompatVerdict(
        "offline", inferred=False, reasons=()
    )
    assert compat_of(migration("DROP TABLE machines;", header="-- compat: live\n")) == (
        CompatVerdict("live", inferred=False, reasons=())
    )


def test_inference_without_declaration() -> None:
    assert compat_of(migration("ALTER TABLE machines ADD COLUMN zone text;")) == CompatVerdict(
        "live", inferred=True, reasons=()
    )
    assert compat_of(migration("SELECT * FROM machines@primary;")) == CompatVerdict(
        "offline", inferred=True, reasons=("not-analysed",)
    )


def test_ignored_rules_do_not_infer_offline() -> None:
    header = "-- lint: ignore change-column-type\n"
    sql = "ALTER TABLE machines ALTER COLUMN hostname TYPE text;"
    assert compat_of(migration(sql, header=header)).compat == "live"
    assert lint_migration(migration(sql, header=header)) == ()


def test_down_file_does_not_count_for_compat() -> None:
    assert compat_of(migration("SELECT 1;", down="DROP TABLE machines;")).compat == "live"


def severities(found: tuple[Finding, ...]) -> list[tuple[str, str]]:
    return [(f.rule, f.severity) for f in found]


def test_declared_live_with_a_breaking_rule_is_an_error() -> None:
    found = lint_migration(migration("DROP TABLE sessions;", header="-- compat: live\n"))
    assert severities(found) == [("drop-table", "error")]
    assert found[0].line == 2
    assert "declares live" in found[0].message
    assert found[0].fix == RULES["drop-table"].fix


def test_declared_live_with_the_rule_ignored_passes() -> None:
    header = "-- compat: live\n-- lint: ignore drop-table\n"
    assert lint_migration(migration("DROP TABLE sessions;", header=header)) == ()


def test_undeclared_breaking_change_is_a_warning_and_declared_offline_is_info() -> None:
    undeclared = lint_migration(migration("DROP TABLE sessions;"))
    assert severities(undeclared) == [("drop-table", "warning")]
    assert "inferred offline" in undeclared[0].message
    declared = lint_migration(migration("DROP TABLE sessions;", header="-- compat: offline\n"))
    assert severities(declared) == [("drop-table", "info")]


def test_risky_rules_are_warnings_whatever_the_declaration() -> None:
    for header in ("", "-- compat: live\n", "-- compat: offline\n"):
        found = lint_migration(migration(CASES["index-not-concurrent"][0], header=header))
        assert severities(found) == [("index-not-concurrent", "warning")]


def test_ignoring_an_unknown_rule_is_an_error() -> None:
    found = lint_migration(
        migration("SELECT 1;", header="-- lint: ignore drop-tabel, drop-table\n")
    )
    assert severities(found) == [("unknown-rule", "error")]
    assert "drop-tabel" in found[0].message and found[0].line == 1
    assert lint_migration(migration("SELECT 1;", header="-- lint: ignore drop-table\n")) == ()


def test_down_file_undoing_its_up_file_is_quiet() -> None:
    up = (
        "CREATE TYPE kind AS ENUM ('a');\n"
        "CREATE TABLE scratch (id bigint, k kind);\n"
        "ALTER TABLE machines ADD COLUMN zone text;\n"
        "CREATE INDEX CONCURRENTLY machines_zone_idx ON machines (zone);\n"
    )
    down = (
        "DROP INDEX machines_zone_idx;\n"
        "ALTER TABLE machines DROP COLUMN zone;\n"
        "DROP TABLE scratch;\n"
        "DROP TYPE kind;\n"
    )
    header = "-- lint: ignore golang-migrate-one-query\n"
    assert lint_migration(migration(up, down=down, header=header)) == ()


def test_down_file_breaking_more_than_its_up_created() -> None:
    found = lint_migration(
        migration("ALTER TABLE machines ADD COLUMN zone text;", down="DROP TABLE sessions;")
    )
    assert severities(found) == [("drop-table", "warning")]
    assert found[0].file == "migrations/8_change.down.sql"
    assert "rolling back" in found[0].message
    offline = lint_migration(
        migration(
            "DROP TABLE sessions;", down="ALTER TABLE machines ALTER COLUMN region SET NOT NULL;"
        )
    )
    assert severities(offline) == [("drop-table", "warning"), ("set-not-null", "info")]


def test_down_file_risky_rules_are_warnings_and_up_ignores_apply() -> None:
    down = "CREATE INDEX machines_region_idx ON machines (region);"
    assert severities(lint_migration(migration("SELECT 1;", down=down))) == [
        ("index-not-concurrent", "warning")
    ]
    header = "-- lint: ignore index-not-concurrent\n"
    assert lint_migration(migration("SELECT 1;", down=down, header=header)) == ()


def test_missing_down_file_is_a_warning_unless_acknowledged() -> None:
    found = lint_migration(migration("SELECT 1;", down=None))
    assert severities(found) == [("missing-down", "warning")]
    assert found[0].file == "migrations/8_change.up.sql"
    header = "-- lint: ignore missing-down\n"
    assert lint_migration(migration("SELECT 1;", down=None, header=header)) == ()


def test_lint_catalogue_covers_every_migration() -> None:
    catalogue = catalogue_from_files(
        "migrations",
        {
            "migrations/1_a.up.sql": "CREATE TABLE a (id bigint);",
            "migrations/1_a.down.sql": "DROP TABLE a;",
            "migrations/2_b.up.sql": "ALTER TABLE a DROP COLUMN id;",
        },
    )
    found = lint_catalogue(catalogue)
    assert [(f.rule, f.file) for f in found] == [
        ("drop-column", "migrations/2_b.up.sql"),
        ("missing-down", "migrations/2_b.up.sql"),
    ]


def test_report_fails_on_errors_and_in_strict_mode_on_warnings() -> None:
    warning = Finding("missing-down", "warning", "f", None, "m", "x")
    error = Finding("drop-table", "error", "f", 1, "m", "x")
    info = Finding("drop-table", "info", "f", 1, "m", "x")
    assert not LintReport((warning, info)).failed()
    assert LintReport((warning,)).failed(strict=True)
    assert not LintReport((info,)).failed(strict=True)
    assert LintReport((error,)).failed()


def test_cockroach_inline_index_misread_as_a_column_is_not_analysed() -> None:
    sql = "CREATE TABLE racks (\n    id STRING PRIMARY KEY,\n    INDEX racks_id_idx (id)\n);\n"
    assert [(h.rule, h.line) for h in analyse(sql).hits] == [("not-analysed", 3)]
    assert rules_of("CREATE TABLE racks (id STRING PRIMARY KEY, name varchar(20));") == set()


CORPUS = Path(__file__).resolve().parents[1] / "bench" / "lint_corpus"


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.sql")), ids=lambda p: p.name)
def test_comparison_corpus_fires_what_each_file_expects(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    first = text.splitlines()[0]
    assert first.startswith("-- Expected: ")
    value = first.removeprefix("-- Expected: ")
    expected = set() if value == "none" else {v.strip() for v in value.split(",")}
    assert rules_of(text) == expected


def test_comparison_corpus_covers_every_sql_rule_both_ways() -> None:
    fired = [rules_of(p.read_text(encoding="utf-8")) for p in CORPUS.glob("*.sql")]
    assert len(fired) >= 30
    assert set().union(*fired) == set(CASES)
    assert sum(1 for rules in fired if not rules) >= 10


@pytest.mark.parametrize(
    ("up", "down", "header", "expected"),
    [
        # What new code depends on is gone after the down: offline.
        ("CREATE TABLE tags (id bigint);", "DROP TABLE tags;", "", ("offline", True)),
        (
            "ALTER TABLE machines ADD COLUMN arch text NOT NULL DEFAULT 'x86_64';",
            "ALTER TABLE machines DROP COLUMN arch;",
            "",
            ("offline", True),
        ),
        # A nullable column, an index, data: new code can live without them.
        ("ALTER TABLE machines ADD COLUMN zone text;", "SELECT 1;", "", ("live", True)),
        ("CREATE INDEX CONCURRENTLY i ON machines (region);", "SELECT 1;", "", ("live", True)),
        # A down file that renames back breaks new code, which uses the new name.
        (
            "ALTER TABLE machines RENAME COLUMN name TO hostname;",
            "ALTER TABLE machines RENAME COLUMN hostname TO name;",
            "",
            ("offline", True),
        ),
        # Dropping the nullable column the up file added is undoing it, not a break.
        (
            "ALTER TABLE machines ADD COLUMN zone text;",
            "ALTER TABLE machines DROP COLUMN zone;",
            "",
            ("live", True),
        ),
        # A directive decides; a missing or unreadable down file overrides it.
        (
            "CREATE TABLE tags (id bigint);",
            "DROP TABLE tags;",
            "-- rollback: live\n",
            ("live", False),
        ),
        ("SELECT 1;", "SELECT 1;", "-- rollback: offline\n", ("offline", False)),
        ("SELECT 1;", None, "-- rollback: live\n", ("restore", False)),
        ("SELECT 1;", "DO $$ BEGIN NULL; END $$;", "", ("restore", True)),
    ],
)
def test_rollback_verdict(
    up: str, down: str | None, header: str, expected: tuple[str, bool]
) -> None:
    verdict = rollback_of(migration(up, down, header=header))
    assert (verdict.mode, verdict.inferred) == expected
    assert verdict.reasons


def test_rollback_reasons_name_what_new_code_depends_on() -> None:
    up = "CREATE TABLE tags (id bigint);\nALTER TABLE machines ADD COLUMN arch text NOT NULL;"
    assert rollback_of(migration(up)).reasons == (
        "creates tags",
        "adds NOT NULL column machines.arch",
    )
    # A column added NOT NULL to a table created in the same file is part of that table.
    both = "CREATE TABLE tags (id bigint);\nALTER TABLE tags ADD COLUMN t text NOT NULL;"
    assert rollback_of(migration(both)).reasons == ("creates tags",)
    renamed = migration(
        "ALTER TABLE m RENAME COLUMN a TO b;", "ALTER TABLE m RENAME COLUMN b TO a;"
    )
    assert rollback_of(renamed).reasons == ("its down file renames column m.b to a",)


@pytest.mark.parametrize(
    ("sql", "line"),
    [
        ("CREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY i ON t (id);\n", 2),
        ("-- transaction: per-statement\nSELECT 1;\nVACUUM t;\n", 3),
        ("CREATE INDEX CONCURRENTLY i ON t (id);\n", None),
        ("BEGIN;\nCREATE TABLE t (id int);\nCOMMIT;\n", None),
    ],
)
def test_lint_warns_where_golang_migrates_one_query_fails(sql: str, line: int | None) -> None:
    found = [
        f
        for f in lint_migration(migration(sql, header="-- compat: live\n"))
        if f.rule == "golang-migrate-one-query"
    ]
    assert [(f.severity, f.line) for f in found] == (
        [] if line is None else [("warning", line + 1)]
    )


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("ALTER TABLE machines ADD COLUMN serial_no text UNIQUE;", {"constraint-validates-rows"}),
        (
            "ALTER TABLE machines ADD COLUMN id2 SERIAL PRIMARY KEY;",
            {"constraint-validates-rows", "add-column-rewrites-table"},
        ),
        (
            "ALTER TABLE machines ADD COLUMN rack_id bigint REFERENCES racks (id);",
            {"constraint-validates-rows"},
        ),
        (
            "ALTER TABLE machines ADD COLUMN n int GENERATED ALWAYS AS IDENTITY;",
            {"add-column-rewrites-table"},
        ),
        (
            "ALTER TABLE machines ADD COLUMN token uuid DEFAULT gen_random_uuid();",
            {"add-column-rewrites-table"},
        ),
        ("ALTER TABLE machines ADD COLUMN zone text DEFAULT 'a';", set()),
        # A table created in the same file has no rows and no old code.
        ("CREATE TABLE racks (id int);\nALTER TABLE racks ADD COLUMN n serial UNIQUE;", set()),
    ],
)
def test_inline_constraints_of_add_column_are_caught(sql: str, expected: set[str]) -> None:
    assert rules_of(sql) == expected
    assert compat_of(migration(sql)).compat == "live"  # old code never writes the new column


def test_inline_references_names_the_locked_table() -> None:
    (hit,) = analyse("ALTER TABLE machines ADD COLUMN rack_id bigint REFERENCES racks (id);").hits
    assert "locks racks against writes" in hit.message and "machines.rack_id" in hit.message


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        # Old code never writes a column added in this file: nothing it can violate.
        ("CHECK (zone <> '')", set()),
        ("FOREIGN KEY (zone) REFERENCES zones (name)", {"constraint-validates-rows"}),
        ("FOREIGN KEY (zone) REFERENCES zones (name) NOT VALID", set()),
        # A check that also names an existing column is old code's business again.
        ("CHECK (zone <> hostname)", {"add-constraint", "constraint-validates-rows"}),
    ],
)
def test_constraints_on_columns_added_earlier_in_the_file_break_nothing(
    constraint: str, expected: set[str]
) -> None:
    sql = "ALTER TABLE machines ADD COLUMN zone text;\n"
    sql += f"ALTER TABLE machines ADD CONSTRAINT z {constraint};"
    assert rules_of(sql) == expected
    assert ("add-constraint" in compat_of(migration(sql)).reasons) is ("add-constraint" in expected)


def test_check_on_a_new_column_with_a_default_still_scans_the_rows() -> None:
    sql = (
        "ALTER TABLE machines ADD COLUMN zone text DEFAULT 'a';\n"
        "ALTER TABLE machines ADD CONSTRAINT z CHECK (zone <> '');"
    )
    assert rules_of(sql) == {"constraint-validates-rows"}
