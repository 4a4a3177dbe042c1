"""The ``tag`` CL strategy: tagged commits as versions, ordered by semantic version.

Why: teams that release by tag (release branches included) name versions
by tag, and each tag's schema is read from its own tree.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from rollsafe import _git
from rollsafe.config import Config
from rollsafe.errors import HistoryError
from rollsafe.history._build import _in_folder
from rollsafe.history._model import PROGRESS_EVERY, CodeVersion, FileChange, History
from rollsafe.migrate import versions_of

#: A version tag after its prefix: ``1.2.3``, ``1.2``, ``1.2.3-rc.1+build``.
_SEMVER = re.compile(
    r"^[^0-9]*(?P<core>[0-9]+(?:\.[0-9]+)*)"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)


def semver_key(name: str) -> tuple[int, tuple[int, ...], tuple[tuple[int, int | str], ...], str]:
    """Sort key of a tag: semantic versions first, in version order, then other names.

    Pre-releases sort before their release, and their dot-separated
    identifiers compare numerically when numeric (``rc.2`` < ``rc.10``),
    as semver.org specifies.
    """
    match = _SEMVER.match(name)
    if match is None:
        return (1, (), (), name)
    core = tuple(int(part) for part in match["core"].split("."))
    core = core + (0,) * (3 - len(core))
    pre: tuple[tuple[int, int | str], ...]
    if match["pre"] is None:
        pre = ((2, 0),)  # a release outranks every pre-release of it
    else:
        pre = tuple(
            (0, int(part)) if part.isdigit() else (1, part) for part in match["pre"].split(".")
        )
    return (0, core, pre, name)


def _tree_changes(before: Mapping[str, str], after: Mapping[str, str]) -> tuple[FileChange, ...]:
    """The changes between two folder states; a removed and an added file with the
    same blob are a rename."""
    removed = {path: blob for path, blob in before.items() if path not in after}
    added = {path: blob for path, blob in after.items() if path not in before}
    by_blob: dict[str, list[str]] = {}
    for path, blob in sorted(removed.items()):
        by_blob.setdefault(blob, []).append(path)
    changes: list[FileChange] = []
    for path in sorted(set(before) | set(after)):
        if path in added:
            sources = by_blob.get(added[path])
            if sources:
                old = sources.pop(0)
                del removed[old]
                changes.append(FileChange("renamed", path, old, added[path], added[path]))
            else:
                changes.append(FileChange("added", path, None, None, added[path]))
        elif path not in removed and before[path] != after[path]:
            changes.append(FileChange("modified", path, None, before[path], after[path]))
    changes.extend(
        FileChange("deleted", path, path, blob, None) for path, blob in sorted(removed.items())
    )
    return tuple(changes)


def _tag_history(
    repo: _git.Repo,
    config: Config,
    folder: str,
    branch: str,
    tip: str,
    progress: Callable[[int], None] | None,
) -> History:
    """Versions named by tags, each read from its own tree (release branches included)."""
    tags = sorted(
        (t for t in _git.commit_tags(repo) if fnmatch.fnmatchcase(t.name, config.tag_glob)),
        key=lambda t: semver_key(t.name),
    )
    if not tags:
        raise HistoryError(
            f"no tag matches `{config.tag_glob}`",
            where=str(config.repo),
            fix="fetch the tags (`git fetch --tags`), or set tag_glob / --tag-glob",
        )
    prefix = f"{folder}/" if folder else ""
    trees: dict[str, dict[str, str]] = {}
    versions: list[CodeVersion] = []
    previous: Mapping[str, str] = {}
    for position, tag in enumerate(tags):
        files = trees.get(tag.commit)
        if files is None:
            files = {
                path: blob
                for path, blob in _git.folder_blobs(repo, tag.commit, folder).items()
                if _in_folder(path, prefix)
            }
            trees[tag.commit] = files
            if progress is not None and len(trees) % PROGRESS_EVERY == 0:
                progress(len(trees))
        versions.append(
            CodeVersion(
                cl=tag.name,
                number=None,
                commit=tag.commit,
                date=datetime.fromtimestamp(tag.timestamp, UTC),
                subject=tag.subject,
                position=position,
                schema=max(versions_of(files, folder), default=None),
                migrations=files,
                changes=_tree_changes(previous, files),
            )
        )
        previous = files
    if progress is not None and len(trees) % PROGRESS_EVERY:
        progress(len(trees))
    return History(
        folder=folder or ".",
        branch=branch,
        tip=tip,
        strategy="tag",
        versions=tuple(versions),
        skipped=0,
        commits=len(trees),
    )
