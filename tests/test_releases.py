"""Release records: written once, read back exactly, and every malformed record named.

Why: records say what reached production and carry the blob ids lint
compares later; an overwritten or silently misread record would hide exactly
the edits they exist to catch.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rollsafe.config import Config
from rollsafe.errors import ReleaseError, UnknownCLError
from rollsafe.history._releases import (
    ReleaseRecord,
    file_name,
    load_records,
    parse_record,
    render_record,
    write_record,
)
from tests.test_rows import history_of

HISTORY = history_of((1549, None), (1565, 1), (1556, 2), (1570, 2))


def config(tmp_path: Path) -> Config:
    return Config(repo=tmp_path)


def test_write_record_holds_cl_commit_date_schema_and_blobs(tmp_path: Path) -> None:
    path = write_record(config(tmp_path), HISTORY, "1556")
    assert path == tmp_path / "releases" / "1556.toml"
    [record] = load_records(config(tmp_path), HISTORY)
    version = HISTORY.find("1556")
    assert record == ReleaseRecord(
        cl="1556",
        commit=version.commit,
        date="2024-01-01T02:00:00Z",
        schema=2,
        migrations=dict(version.migrations),
        path="releases/1556.toml",
    )
    text = path.read_text()
    assert text.startswith("# Release record written by `rollsafe release`")
    assert '"migrations/1_m1.up.sql" = "' in text


def test_write_refuses_to_overwrite(tmp_path: Path) -> None:
    path = write_record(config(tmp_path), HISTORY, "1565")
    before = path.read_bytes()
    with pytest.raises(ReleaseError, match="already exists") as caught:
        write_record(config(tmp_path), HISTORY, "1565")
    assert caught.value.where == "releases/1565.toml"
    assert path.read_bytes() == before


def test_unknown_cl_is_not_recorded(tmp_path: Path) -> None:
    with pytest.raises(UnknownCLError):
        write_record(config(tmp_path), HISTORY, "9999")
    assert not (tmp_path / "releases").exists()


def test_cl_without_schema_has_no_schema_key(tmp_path: Path) -> None:
    path = write_record(config(tmp_path), HISTORY, "1549")
    assert "schema" not in path.read_text()
    assert load_records(config(tmp_path))[0].schema is None


def test_records_are_sorted_by_landing_order(tmp_path: Path) -> None:
    for cl in ("1570", "1556", "1565"):
        write_record(config(tmp_path), HISTORY, cl)
    assert [r.cl for r in load_records(config(tmp_path), HISTORY)] == ["1565", "1556", "1570"]


def test_rendering_is_deterministic_and_round_trips() -> None:
    record = ReleaseRecord(
        cl="release/1.2",
        commit="a" * 40,
        date="2024-01-01T00:00:00Z",
        schema=0,
        migrations={"m/b.sql": "1" * 40, 'm/a "q".sql': "2" * 40},
        path="releases/release%2F1.2.toml",
    )
    assert file_name(record.cl) == "release%2F1.2.toml"
    text = render_record(record)
    assert render_record(record) == text
    assert parse_record(text, path=record.path) == record


GOOD = """cl = "1565"
commit = "{commit}"
date = "2024-01-01T01:00:00Z"
schema = 1

[migrations]
"migrations/1_m1.up.sql" = "{blob}"
"""


def good(**replace: str) -> str:
    text = GOOD.format(commit="c" * 40, blob="b" * 40)
    for old, new in replace.items():
        text = text.replace(old, new)
    return text


def test_good_record_parses() -> None:
    record = parse_record(good(), path="releases/1565.toml")
    assert record.schema == 1 and record.migrations == {"migrations/1_m1.up.sql": "b" * 40}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cl = ", "not valid TOML"),
        (good(**{'cl = "1565"': "cl = 1565"}), "`cl` is missing or not a non-empty string"),
        (good(**{"c" * 40: "abc"}), "`commit` is not a full commit id"),
        (good(**{"2024-01-01T01:00:00Z": "yesterday"}), "`date` is not an ISO 8601 time"),
        (good(**{"2024-01-01T01:00:00Z": "2024-01-01T01:00:00"}), "with a zone"),
        (good(**{"schema = 1": "schema = -1"}), "`schema` is not a migration version"),
        (good(**{"schema = 1": 'schema = "1"'}), "`schema` is not a migration version"),
        (good(**{"schema = 1": "version = 1"}), "unknown key `version`"),
        (good(**{'"' + "b" * 40 + '"': "3"}), "`[migrations]` must map file paths"),
        (good(**{'"' + "b" * 40 + '"': '"xyz"'}), "`[migrations]` must map file paths"),
        (good(**{'cl = "1565"': 'cl = "1566"'}), "the file name says CL 1565"),
    ],
)
def test_malformed_record_is_named(text: str, message: str) -> None:
    with pytest.raises(
        ReleaseError, match=message.replace("[", r"\[").replace("]", r"\]")
    ) as caught:
        parse_record(text, path="releases/1565.toml")
    assert caught.value.where == "releases/1565.toml"


def test_load_names_the_malformed_file(tmp_path: Path) -> None:
    folder = tmp_path / "releases"
    folder.mkdir()
    (folder / "DEPLOYING.md").write_text("not a record\n")
    (folder / "1565.toml").write_text("cl = \n")
    with pytest.raises(ReleaseError) as caught:
        load_records(config(tmp_path))
    assert caught.value.where == "releases/1565.toml"


def test_record_of_a_cl_not_on_the_branch_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "releases"
    folder.mkdir()
    (folder / "1600.toml").write_text(good(**{'cl = "1565"': 'cl = "1600"'}))
    with pytest.raises(ReleaseError, match="not a code version of branch main"):
        load_records(config(tmp_path), HISTORY)


def test_record_with_another_commit_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "releases"
    folder.mkdir()
    (folder / "1565.toml").write_text(good())
    with pytest.raises(ReleaseError, match="history says"):
        load_records(config(tmp_path), HISTORY)


def test_no_releases_folder_means_no_records(tmp_path: Path) -> None:
    assert load_records(config(tmp_path), HISTORY) == ()
