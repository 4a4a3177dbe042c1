"""Scenario git repositories built on the fly in temporary folders.

Why: history is the input of rollsafe, so tests build real repositories with
the real ``git`` binary (no mocks): commits with Gerrit trailers, merges,
tags, renames and shallow clones, exactly as a team's repository has them.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

#: A fixed identity and clock so that commit ids are reproducible in tests.
BASE_ENV = {
    "GIT_AUTHOR_NAME": "Dev",
    "GIT_AUTHOR_EMAIL": "dev@example.com",
    "GIT_COMMITTER_NAME": "Dev",
    "GIT_COMMITTER_EMAIL": "dev@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}
#: 2024-01-01T00:00:00Z; every commit advances the clock by one hour.
EPOCH = 1_704_067_200


class GitRepo:
    """A git repository in a folder, driven through the git binary."""

    def __init__(self, path: Path, *, branch: str = "main") -> None:
        self.path = path
        self.clock = EPOCH
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", branch)

    def git(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        """Run git in the repository and return its stdout (raises on failure)."""
        full_env = {**os.environ, **BASE_ENV, **(env or {})}
        done = subprocess.run(
            ["git", *args],
            cwd=self.path,
            env=full_env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    def write(self, files: Mapping[str, str | None]) -> None:
        """Write (or with ``None``, delete) files relative to the repository."""
        for name, text in files.items():
            target = self.path / name
            if text is None:
                if target.exists():
                    target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")

    def commit(
        self,
        message: str,
        files: Mapping[str, str | None] | None = None,
        *,
        change: int | None = None,
        allow_empty: bool = True,
    ) -> str:
        """Commit the given file changes; ``change`` adds a Gerrit ``Reviewed-on`` trailer.

        Returns the new commit id.
        """
        if files:
            self.write(files)
        self.git("add", "-A")
        text = message
        if change is not None:
            text += f"\n\nChange-Id: I{change:040d}\nReviewed-on: https://review.example/c/project/+/{change}\n"
        self.clock += 3600
        stamp = f"{self.clock} +0000"
        args = ["commit", "-q", "-m", text]
        if allow_empty:
            args.append("--allow-empty")
        self.git(*args, env={"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp})
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def tag(self, name: str, commit: str = "HEAD") -> None:
        self.git("tag", name, commit)


def migration(version: int, title: str, up: str, down: str | None = "") -> dict[str, str | None]:
    """Files of one migration in ``migrations/`` (``down=None``: irreversible)."""
    files: dict[str, str | None] = {f"migrations/{version}_{title}.up.sql": up}
    if down is not None:
        files[f"migrations/{version}_{title}.down.sql"] = down or f"-- undo {title}\n"
    return files
