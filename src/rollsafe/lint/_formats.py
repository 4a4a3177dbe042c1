"""Lint findings in the formats CI systems read: GitHub workflow commands and SARIF 2.1.0.

Why: a finding is most useful where the change is reviewed.  GitHub Actions
turns ``::error file=...,line=...::message`` lines of a step's output into
annotations on the pull request's diff, with no upload step; code scanning
(and most other review tools) import SARIF, the OASIS standard for static
analysis results.  Both are pure renderings of a `LintReport`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from rollsafe._version import __version__
from rollsafe.lint._registry import RULES, Finding, Severity
from rollsafe.lint._run import LintReport

#: GitHub's annotation levels for rollsafe's severities.
GITHUB_LEVELS: Mapping[Severity, str] = {"error": "error", "warning": "warning", "info": "notice"}
#: SARIF's result levels for rollsafe's severities.
SARIF_LEVELS: Mapping[Severity, str] = {"error": "error", "warning": "warning", "info": "note"}
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
HOMEPAGE = "https://pypi.org/project/rollsafe/"


def _escape_data(text: str) -> str:
    """A workflow command's message: ``%``, CR and LF escaped as the runner expects."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    """A workflow command's property value: the message's escapes plus ``:`` and ``,``."""
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(report: LintReport, *, folder: str, summary: str) -> str:
    """One workflow command per finding, then ``summary`` as a plain line.

    A finding about the repository as a whole (no file) is pinned to the
    migrations ``folder``, so the annotation still says where to look.
    """
    lines: list[str] = []
    for found in report.findings:
        properties = [f"file={_escape_property(found.file or folder)}"]
        if found.line is not None:
            properties.append(f"line={found.line}")
        properties.append(f"title={_escape_property('rollsafe ' + found.rule)}")
        message = found.message
        if found.severity in ("error", "warning"):
            message += f"\nfix: {found.fix}"
        lines.append(
            f"::{GITHUB_LEVELS[found.severity]} {','.join(properties)}::{_escape_data(message)}"
        )
    lines.append(summary)
    return "\n".join(lines) + "\n"


def render_sarif(report: LintReport, *, folder: str) -> str:
    """The report as a SARIF 2.1.0 log: one run, every rule described, one result per finding.

    Paths are relative to the repository (``%SRCROOT%``), as code scanning
    expects; a finding without a file points at the migrations ``folder``.
    The CL and commit of a history hazard go into the result's properties.
    """
    ids = list(RULES)
    rules = [
        {
            "id": rule.id,
            "name": "".join(part.capitalize() for part in rule.id.split("-")),
            "shortDescription": {"text": rule.why},
            "help": {"text": f"{rule.why}. Fix: {rule.fix}"},
            "defaultConfiguration": {"level": SARIF_LEVELS[rule.severity]},
            "properties": {"kind": rule.kind},
        }
        for rule in RULES.values()
    ]
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "rollsafe",
                        "version": __version__,
                        "informationUri": HOMEPAGE,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "the repository"}}},
                "results": [_result(found, ids, folder) for found in report.findings],
            }
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def _result(found: Finding, ids: list[str], folder: str) -> dict[str, object]:
    location: dict[str, object] = {
        "artifactLocation": {"uri": found.file or folder, "uriBaseId": "%SRCROOT%"}
    }
    if found.line is not None:
        location["region"] = {"startLine": found.line}
    result: dict[str, object] = {
        "ruleId": found.rule,
        "level": SARIF_LEVELS[found.severity],
        "message": {"text": f"{found.message}. Fix: {found.fix}"},
        "locations": [{"physicalLocation": location}],
    }
    if found.rule in RULES:
        result["ruleIndex"] = ids.index(found.rule)
    if found.cl is not None or found.commit is not None:
        result["properties"] = {"cl": found.cl, "commit": found.commit}
    return result
