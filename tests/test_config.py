"""Tests for rollsafe.config: defaults, [tool.rollsafe] keys, flag overrides and bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollsafe.config import KEYS, Config, load_config
from rollsafe.errors import ConfigError

REPOSITORY = Path(__file__).resolve().parent.parent


def project(tmp_path: Path, toml: str | None) -> Path:
    """A repository folder (``.git`` marker) with the given pyproject.toml."""
    (tmp_path / ".git").mkdir()
    if toml is not None:
        (tmp_path / "pyproject.toml").write_text(toml, encoding="utf-8")
    return tmp_path


def test_defaults_without_pyproject(tmp_path: Path) -> None:
    config = load_config(project(tmp_path, None))
    assert config == Config(repo=tmp_path.resolve())
    assert (config.migrations, config.deploying, config.releases) == (
        "migrations",
        "releases/DEPLOYING.md",
        "releases",
    )
    assert (config.cl_strategy, config.tag_glob, config.branch, config.baseline) == (
        "auto",
        "v*",
        None,
        None,
    )
    assert (config.engine, config.migrations_table, config.notes_ref) == (
        "auto",
        "schema_migrations",
        "refs/notes/review",
    )
    assert config.queries == () and config.sources == ()
    assert config.path("migrations") == tmp_path.resolve() / "migrations"


def test_keys_exclude_repo_and_sources() -> None:
    assert "repo" not in KEYS and "sources" not in KEYS
    assert {"migrations", "cl_strategy", "baseline", "notes_ref"} <= set(KEYS)


def test_pyproject_keys_with_dashes_or_underscores(tmp_path: Path) -> None:
    config = load_config(
        project(
            tmp_path,
            "[tool.rollsafe]\n"
            'migrations = "db/migrations"\n'
            'queries = ["q/*.sql", "r/*.sql"]\n'
            'cl-strategy = "gerrit"\n'
            'tag_glob = "release-*"\n'
            'branch = "release"\n'
            "baseline = 3\n"
            'migrations-table = "versions"\n'
            'engine = "postgres"\n'
            'notes_ref = "refs/notes/gerrit"\n',
        )
    )
    assert config.migrations == "db/migrations"
    assert config.queries == ("q/*.sql", "r/*.sql")
    assert (config.cl_strategy, config.tag_glob, config.branch) == (
        "gerrit",
        "release-*",
        "release",
    )
    assert (config.baseline, config.migrations_table, config.engine) == (3, "versions", "postgres")
    assert config.notes_ref == "refs/notes/gerrit"
    assert config.sources == (str(tmp_path.resolve() / "pyproject.toml"),)


def test_pyproject_without_our_section_and_empty_branch(tmp_path: Path) -> None:
    assert load_config(project(tmp_path, '[project]\nname = "x"\n')).sources == ()
    other = tmp_path / "other"
    other.mkdir()
    config = load_config(project(other, '[tool.rollsafe]\nbranch = ""\nqueries = "a, b,"\n'))
    assert config.branch is None
    assert config.queries == ("a", "b")


def test_unknown_key_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key `migration` in") as caught:
        load_config(project(tmp_path, '[tool.rollsafe]\nmigration = "x"\n'))
    assert caught.value.where == str(tmp_path.resolve() / "pyproject.toml")
    assert caught.value.fix is not None and "migrations" in caught.value.fix


@pytest.mark.parametrize(
    ("line", "what"),
    [
        ('cl_strategy = "svn"', "bad value 'svn' for `cl_strategy`"),
        ('engine = "sqlite"', "bad value 'sqlite' for `engine`"),
        ("baseline = -1", "bad value -1 for `baseline`"),
        ('baseline = "abc"', "bad value 'abc' for `baseline`"),
        ("baseline = true", "bad value True for `baseline`"),
        ("baseline = 1.5", "bad value 1.5 for `baseline`"),
        ("queries = [1, 2]", "bad value \\[1, 2\\] for `queries`"),
        ("queries = 3", "bad value 3 for `queries`"),
        ('migrations = ""', "bad value '' for `migrations`"),
        ("tag_glob = []", "bad value \\[\\] for `tag_glob`"),
        ("branch = 5", "bad value 5 for `branch`"),
    ],
)
def test_bad_values(tmp_path: Path, line: str, what: str) -> None:
    with pytest.raises(ConfigError, match=what) as caught:
        load_config(project(tmp_path, f"[tool.rollsafe]\n{line}\n"))
    assert caught.value.where is not None and "[tool.rollsafe]" in caught.value.where
    assert caught.value.fix


@pytest.mark.parametrize(
    ("toml", "what"),
    [
        ("[tool.rollsafe\n", "cannot parse"),
        ("[tool]\nrollsafe = 1\n", r"\[tool.rollsafe\] must be a table"),
        ('tool = "x"\n', r"\[tool.rollsafe\] must be a table"),
    ],
)
def test_broken_pyproject(tmp_path: Path, toml: str, what: str) -> None:
    with pytest.raises(ConfigError, match=what):
        load_config(project(tmp_path, toml))


def test_pyproject_that_is_not_utf8(tmp_path: Path) -> None:
    project(tmp_path, None)
    (tmp_path / "pyproject.toml").write_bytes(b'[tool.rollsafe]\nmigrations = "\xe9"\n')
    with pytest.raises(ConfigError, match="cannot parse"):
        load_config(tmp_path)


def test_overrides_with_dashes_beat_the_file(tmp_path: Path) -> None:
    repo = project(tmp_path, '[tool.rollsafe]\ncl_strategy = "gerrit"\nbaseline = 2\n')
    config = load_config(
        repo,
        {
            "cl-strategy": "tag",
            "tag-glob": "r*",
            "baseline": "5",
            "queries": "a/*.sql,b/*.sql",
            "migrations": None,  # flag not given: the file's (default) value stays
        },
    )
    assert (config.cl_strategy, config.tag_glob, config.baseline) == ("tag", "r*", 5)
    assert config.queries == ("a/*.sql", "b/*.sql")
    assert config.migrations == "migrations"
    assert config.sources == (
        str(repo.resolve() / "pyproject.toml"),
        "--cl-strategy",
        "--tag-glob",
        "--baseline",
        "--queries",
    )


def test_bad_overrides_name_the_flag(tmp_path: Path) -> None:
    repo = project(tmp_path, None)
    with pytest.raises(ConfigError, match="unknown setting `colour`"):
        load_config(repo, {"colour": "red"})
    with pytest.raises(ConfigError, match="bad value 'x' for `baseline`") as caught:
        load_config(repo, {"baseline": "x"})
    assert caught.value.where == "--baseline"
    with pytest.raises(ConfigError, match="bad value 'hg' for `cl_strategy`") as caught:
        load_config(repo, {"cl-strategy": "hg"})
    assert caught.value.where == "--cl-strategy"


def test_repository_top_is_found_from_a_sub_folder(tmp_path: Path) -> None:
    repo = project(tmp_path, '[tool.rollsafe]\nmigrations = "db"\n')
    sub = repo / "src" / "deep"
    sub.mkdir(parents=True)
    config = load_config(sub)
    assert config.repo == repo.resolve()
    assert config.migrations == "db"


def test_cwd_is_the_default_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = project(tmp_path, None)
    monkeypatch.chdir(repo)
    assert load_config().repo == repo.resolve()


def test_missing_repository_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="repository folder does not exist"):
        load_config(tmp_path / "missing")
    # A mistyped path inside a repository must not select the enclosing one.
    repo = project(tmp_path, None)
    with pytest.raises(ConfigError, match="repository folder does not exist") as caught:
        load_config(repo / "typo")
    assert caught.value.where == str(repo / "typo")


def test_this_repository_s_own_configuration() -> None:
    config = load_config(REPOSITORY)
    assert config.repo == REPOSITORY
    assert config.migrations == "migrations"
    assert config.queries == ("queries/*.sql",)
