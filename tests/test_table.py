"""The DEPLOYING table as text: columns, out-of-order list, example, markers, atomic writes.

Why: the file is committed and checked by CI, so its bytes must depend on the
rows only, the team's prose must survive every rewrite, and a malformed file
must be reported instead of being overwritten.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from rollsafe._files import write_atomic
from rollsafe.errors import DeployingFileError
from rollsafe.table import rows_from
from rollsafe.table._deploying import (
    BEGIN,
    END,
    INTRO,
    choose_example,
    merge_document,
    render_block,
    rows_to_json,
    unified_diff,
)
from rollsafe.table._rows import number_ranges
from tests.test_rows import V, history_of, live

SPECS = (
    (1549, 1),
    (1567, 1),
    (1552, 1),
    (1560, 1),
    (1565, 2),
    (1556, 2),
    (1570, 2),
    (1580, 3),
)
COMPAT = {1: V(), 2: V("offline", inferred=True, reasons=("drop-column",)), 3: V()}
NOTES = {1: "Initial | schema.", 3: "Adds a column."}


def block(*extra: tuple[int, int], released: set[str] | None = None) -> str:
    history = history_of(*SPECS, *extra)
    rows = rows_from(history, COMPAT, NOTES, irreversible={3}, released=released)
    return render_block(rows, released_from="releases" if released else None)


def test_table_columns_and_cells() -> None:
    text = block()
    assert text.startswith(BEGIN + "\n") and text.endswith(END + "\n")
    lines = text.splitlines()
    assert "| ID | Schema range | CL range | Landed | Upgrade | Rollback | Notes |" in lines
    assert "| 0 | 1 | 1549-1567 | 2024-01-01 | - | - | Initial \\| schema. |" in lines
    assert (
        "| 1 | 2 | 1556-1570 | 2024-01-01 | offline (inferred) | live (inferred) | "
        "Offline inferred by lint: 2 (drop-column). |"
    ) in lines
    assert (
        "| 2 | 3 | 1580 and later | 2024-01-01 | live | restore | "
        "Adds a column. Irreversible: migration 3 has no down file. |"
    ) in lines


def test_notes_without_a_full_stop_do_not_run_into_the_generated_remark() -> None:
    history = history_of(*SPECS)
    rows = rows_from(history, COMPAT, {2: "hostname replaces name"}, irreversible=set())
    assert "| hostname replaces name. Offline inferred by lint: 2 (drop-column). |" in render_block(
        rows
    )


def test_out_of_order_list_names_cls_across_the_row_boundary() -> None:
    text = block()
    assert "**Out-of-order CLs.** Gerrit numbers a change when it is uploaded" in text
    assert (
        "- Row 0 (CLs 1549-1567): 2 CLs landed in a later row and ship a newer schema: "
        "1556, 1565 (row 1, schema 2)."
    ) in text
    assert (
        "- Row 1 (CLs 1556-1570): 2 CLs landed before CL 1565 and ship an older schema: "
        "1560, 1567 (row 0, schema 1)."
    ) in text


def test_out_of_order_is_at_most_two_lines_a_row_and_names_every_cl() -> None:
    # 400 CLs in 8 rows, a third of them landing late: one line per direction per row.
    rng = random.Random(12)
    numbers = list(range(1000, 1400))
    for index in range(0, 399, 2):
        late = min(399, index + rng.randint(1, 90))
        numbers[index], numbers[late] = numbers[late], numbers[index]
    specs = [(number, 1 + index // 50) for index, number in enumerate(numbers)]
    rows = rows_from(history_of(*specs), live(*range(1, 9)), {})
    text = render_block(rows)
    lines = [line for line in text.splitlines() if line.startswith("- Row ")]
    for row in rows:
        mine = [line for line in lines if line.startswith(f"- Row {row.id} ")]
        assert len(mine) <= 2
        newer = [e for e in row.out_of_order if e.newer and not rows[e.row].open]
        older = [e for e in row.out_of_order if not e.newer]
        assert len(mine) == bool(newer) + bool(older)
        listed = {
            n
            for line in mine
            for low, _, high in (
                part.partition("-")
                for group in line.split(": ", 2)[2].split("; ")
                for part in group.split(" (")[0].split(", ")
            )
            for n in range(int(low), int(high or low) + 1)
        }
        assert listed == {e.version.number for e in (*newer, *older)}
    assert sum(len(row.out_of_order) for row in rows) > 200


def test_number_ranges_run_consecutive_numbers_together() -> None:
    assert number_ranges([1569, 1557, 1558, 1559, 1560, 1565, 1566, 1567]) == (
        "1557-1560, 1565-1567, 1569"
    )
    assert number_ranges([7]) == "7"
    assert number_ranges([]) == ""


def test_commits_landing_in_the_open_row_do_not_change_the_block() -> None:
    # 1575 and 1558 land after 1580 without a migration; 1558 falls in row 1's range,
    # but it belongs to the open row, whose rule the legend states once.
    assert block((1590, 3), (1558, 3), (1575, 3)) == block()
    assert "every CL that lands after CL 1580 ships its schema" in " ".join(block().split())


def test_example_is_taken_from_real_rows_and_is_stable() -> None:
    text = block()
    assert "`rollsafe upgrade-plan --from 1549 --to 1580`" in text
    assert "```text\nUpgrade plan: CL 1549 (row 0, schema 1) -> CL 1580 (row 2, schema 3)" in text
    assert "1. CL 1560 - schema 1, no schema change - live" in text
    assert "2. CL 1570 - schema 2, applies migration 2 - offline (inferred)" in text
    assert "a. Stop every component." in text


def test_example_needs_two_rows() -> None:
    history = history_of((1, 1), (2, 1))
    rows = rows_from(history, live(1), {})
    assert choose_example(rows) is None
    assert "One row so far" in render_block(rows)


def test_empty_history_still_writes_the_markers() -> None:
    text = render_block(())
    assert text.startswith(BEGIN) and text.endswith(END + "\n")
    assert "No schema has shipped yet" in text


def test_release_records_are_explained() -> None:
    text = block(released={"1549", "1560", "1570", "1580"})
    joined = " ".join(text.split())
    assert "Rows list released CLs only (the records in `releases/`)" in joined
    assert "| 2 | 3 | 1580 | " in text  # no open row with records


def test_rendering_depends_on_the_rows_only() -> None:
    """The file is committed and checked by CI: its bytes must be the same on every run,
    so no set or hash order may leak in (each interpreter below hashes strings differently)."""
    code = (
        "import sys\n"
        "from tests.test_table import block\n"
        "sys.stdout.write(block() + block(released={'1549', '1560', '1570', '1580'}))\n"
    )
    root = Path(__file__).resolve().parent.parent
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=root,
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(8)
    }
    assert outputs == {block() + block(released={"1580", "1570", "1560", "1549"})}


def test_new_file_gets_an_introduction() -> None:
    assert merge_document(None, block(), file="DEPLOYING.md") == INTRO + block()


def test_file_without_markers_gets_the_block_appended() -> None:
    merged = merge_document("# Deploy\n\nOur prose.\n", block(), file="DEPLOYING.md")
    assert merged == "# Deploy\n\nOur prose.\n\n" + block()
    merged = merge_document("no newline", block(), file="DEPLOYING.md")
    assert merged == "no newline\n\n" + block()
    merged = merge_document("blank line\n\n", block(), file="DEPLOYING.md")
    assert merged == "blank line\n\n" + block()


def test_prose_outside_the_markers_is_kept_byte_for_byte() -> None:
    before = "# Title\n\nMention `" + BEGIN + "` inline.\n\n"
    after = "\n## After\n\nTrailing prose, no newline at the end"
    old = before + BEGIN + "\nold table\n" + END + "\n" + after
    merged = merge_document(old, block(), file="DEPLOYING.md")
    assert merged == before + block() + after
    assert merge_document(merged, block(), file="DEPLOYING.md") == merged


def test_crlf_files_keep_their_line_endings() -> None:
    old = "Prose\r\n" + BEGIN + "\r\nold\r\n" + END + "\r\n"
    merged = merge_document(old, block(), file="DEPLOYING.md")
    assert merged == "Prose\r\n" + block().replace("\n", "\r\n")


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        (f"a\n{BEGIN}\nb\n", "begin marker without an end marker", 2),
        (f"a\n{END}\n", "end marker without a begin marker", 2),
        (f"{END}\n{BEGIN}\n", "end marker before the begin marker", 1),
        (f"{BEGIN}\n{END}\n{BEGIN}\n{END}\n", "the begin marker appears 2 times", 3),
        (f"{BEGIN}\n{END}\n{END}\n", "the end marker appears 2 times", 3),
    ],
)
def test_malformed_markers_are_an_error_naming_the_line(text: str, message: str, line: int) -> None:
    with pytest.raises(DeployingFileError) as caught:
        merge_document(text, block(), file="docs/DEPLOYING.md")
    assert message in caught.value.message
    assert caught.value.where == f"docs/DEPLOYING.md:{line}"


def test_unified_diff_shows_the_change() -> None:
    diff = unified_diff("a\nb\n", "a\nc\n", file="DEPLOYING.md")
    assert diff.startswith("--- a/DEPLOYING.md\n+++ b/DEPLOYING.md\n")
    assert "-b\n+c\n" in diff
    assert unified_diff("a\n", "a\n", file="x") == ""
    assert unified_diff(None, "a\n", file="x").startswith("--- /dev/null\n+++ b/x\n")


def test_write_atomic_replaces_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "DEPLOYING.md"
    write_atomic(target, "one\n")
    write_atomic(target, "two\n")
    assert target.read_bytes() == b"two\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["DEPLOYING.md"]


def test_write_atomic_exclusive_never_replaces(tmp_path: Path) -> None:
    target = tmp_path / "1565.toml"
    write_atomic(target, "first\n", exclusive=True)
    with pytest.raises(FileExistsError):
        write_atomic(target, "second\n", exclusive=True)
    assert target.read_text() == "first\n"
    assert [p.name for p in tmp_path.iterdir()] == ["1565.toml"]


def test_json_rows_list_every_cl() -> None:
    history = history_of(*SPECS)
    rows = rows_from(history, COMPAT, NOTES)
    data = json.loads(json.dumps(rows_to_json(rows)))
    assert [row["cls"] for row in data] == [
        ["1549", "1567", "1552", "1560"],
        ["1565", "1556", "1570"],
        ["1580"],
    ]
    assert data[1]["upgrade"] == "offline" and data[1]["inferred"] is True
    assert data[2]["open"] is True and data[2]["cl_range"] == "1580 and later"
    assert data[0]["out_of_order"][0]["cl"] == "1556"
    assert data[0]["out_of_order"][0]["landed"] == "after"
    assert data[0]["first"]["commit"] == history.find("1549").commit
