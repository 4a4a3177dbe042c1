"""What history reading produces: code versions, their file changes, and the `History`.

Why: rows, plans, lint and the pair tests take a `History` as plain data;
keeping the types apart from the git reading lets them be built in memory
in tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Literal

from rollsafe.errors import UnknownCLError

ChangeKind = Literal["added", "modified", "deleted", "renamed"]


Strategy = Literal["gerrit", "ordinal", "tag"]


#: How often (in commits read) the progress callback is called.
PROGRESS_EVERY = 1000

#: Shortest commit id prefix `History.find` accepts (git's own default abbreviation).
MIN_SHA_PREFIX = 7


_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class FileChange:
    """One change to a migration file (``.sql`` directly in the folder) against the first parent.

    ``path`` is the new path for renames and the removed path for deletes;
    ``old_path`` is set for renames and deletes.  Blob ids are git's own
    hashes of the file contents, the checksums lint compares.
    """

    kind: ChangeKind
    path: str
    old_path: str | None
    old_blob: str | None
    new_blob: str | None


@dataclass(frozen=True)
class CodeVersion:
    """A code version of the release branch and the migrations it carries.

    ``migrations`` maps the path of every ``.sql`` file directly in the
    folder to its blob id; versions that did not change the folder share one
    mapping, which must not be mutated.  ``schema`` is the highest valid up
    version present (None when there is none; misnamed files are ignored
    here and reported by lint).
    """

    cl: str
    number: int | None
    commit: str
    date: datetime
    subject: str
    position: int
    schema: int | None
    migrations: Mapping[str, str]
    changes: tuple[FileChange, ...]

    def __hash__(self) -> int:
        # The generated hash would hash the mapping and fail; a version is
        # identified by its CL and commit.
        return hash((self.cl, self.commit))


#: One first-parent commit as the builder consumes it: id, committer date (seconds),
#: subject, Gerrit number (None when it has none or numbers are not read), and its
#: changes to the migrations folder.
_Record = tuple[str, int, str, int | None, tuple[FileChange, ...]]


@dataclass(frozen=True)
class History:
    """Every code version of one branch, in landing order, and how they were found."""

    folder: str
    branch: str
    tip: str
    strategy: Strategy
    versions: tuple[CodeVersion, ...]
    skipped: int
    commits: int

    @cached_property
    def _by_cl(self) -> dict[str, CodeVersion]:
        return {version.cl: version for version in self.versions}

    def find(self, cl: str) -> CodeVersion:
        """The version a user means by ``cl`` (see the module docstring for what is accepted).

        Raises `UnknownCLError` with a hint of what exists.
        """
        wanted = cl.strip()
        found = self._by_cl.get(wanted)
        if found is not None:
            return found
        if self.strategy != "tag" and wanted.isdigit():
            found = self._by_cl.get(str(int(wanted)))
            if found is not None:
                return found
        prefix = wanted.lower()
        if len(prefix) >= MIN_SHA_PREFIX and set(prefix) <= _HEX:
            matches = [v for v in self.versions if v.commit.startswith(prefix)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise UnknownCLError(
                    cl, fix=f"commit prefix `{wanted}` is ambiguous; give more of the commit id"
                )
        raise UnknownCLError(cl, fix=self._known())

    def _known(self) -> str:
        """A fix hint naming the range of CLs that do exist."""
        if not self.versions:
            return f"the branch `{self.branch}` has no code versions"
        first, last = self.versions[0].cl, self.versions[-1].cl
        kind = {"gerrit": "Gerrit change numbers", "ordinal": "first-parent positions"}.get(
            self.strategy, "tags"
        )
        return (
            f"CLs are {kind} ({first} ... {last}, {len(self.versions)} in all) or commit ids; "
            "`rollsafe release-table --format json` lists them"
        )
