"""Configuration: ``[tool.rollsafe]`` in pyproject.toml, overridable by flags.

Why: the tool must run against any repository without editing it, so every
key has a default that fits the usual layout, every key can be given on the
command line, and an unknown key or a bad value is one clear error instead of
a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
import posixpath
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from rollsafe.errors import ConfigError

ClStrategy = Literal["auto", "gerrit", "ordinal", "tag"]
EngineName = Literal["auto", "postgres", "cockroach", "external"]


@dataclass(frozen=True)
class Config:
    """Where things are in the repository, and how code versions are named.

    Paths are relative to ``repo`` (the top of the git work tree) and use
    ``/`` separators, because they are also paths inside git history.
    """

    repo: Path
    migrations: str = "migrations"
    deploying: str = "releases/DEPLOYING.md"
    svg: str | None = None
    releases: str = "releases"
    fixtures: str = "tests/upgrade"
    queries: tuple[str, ...] = ()
    cl_strategy: ClStrategy = "auto"
    tag_glob: str = "v*"
    branch: str | None = None
    baseline: int | None = None
    migrations_table: str = "schema_migrations"
    engine: EngineName = "auto"
    notes_ref: str = "refs/notes/review"
    #: Rows generated from the catalog per table and state of the pair test (0: none).
    seed_rows: int = 3
    sources: tuple[str, ...] = field(default=(), compare=False)

    @property
    def picture(self) -> str | None:
        """The landing-order SVG: ``svg``, else beside the DEPLOYING file; ``None`` when off."""
        if self.svg is None:
            return posixpath.splitext(self.deploying)[0] + ".svg"
        return self.svg or None

    def path(self, relative: str) -> Path:
        """The absolute path of a repository-relative path."""
        return self.repo / relative


#: Keys that pyproject.toml and flags may set (everything but ``repo``/``sources``).
KEYS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(Config) if f.name not in ("repo", "sources")
)


def _coerce(key: str, value: object, source: str) -> object:
    """Turn a TOML or flag value into the field's type, or say which key is wrong."""
    bad = f"bad value {value!r} for `{key}`"
    where = source
    if key == "queries":
        if isinstance(value, str):
            return tuple(part for part in (p.strip() for p in value.split(",")) if part)
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(bad, where=where, fix="give a list of glob patterns")
    if key == "baseline":
        if value is None:
            return None
        if isinstance(value, bool):
            raise ConfigError(bad, where=where, fix="give a migration version (an integer >= 0)")
        try:
            number = int(str(value))
        except ValueError:
            raise ConfigError(
                bad, where=where, fix="give a migration version (an integer >= 0)"
            ) from None
        if number < 0:
            raise ConfigError(bad, where=where, fix="give a migration version (an integer >= 0)")
        return number
    if key == "seed_rows":
        fix = "give a number of rows (an integer >= 0; 0 turns generated seeds off)"
        if isinstance(value, bool):
            raise ConfigError(bad, where=where, fix=fix)
        try:
            rows = int(str(value))
        except ValueError:
            raise ConfigError(bad, where=where, fix=fix) from None
        if rows < 0 or rows > 1000:
            raise ConfigError(bad, where=where, fix=fix)
        return rows
    if key == "cl_strategy":
        choices = get_args(ClStrategy)
        if value not in choices:
            raise ConfigError(bad, where=where, fix=f"choose one of {', '.join(choices)}")
        return value
    if key == "engine":
        choices = get_args(EngineName)
        if value not in choices:
            raise ConfigError(bad, where=where, fix=f"choose one of {', '.join(choices)}")
        return value
    if key == "svg" and (value is False or value == ""):
        return ""  # `svg = false`: no picture (``None`` is the default, beside the file)
    if key == "branch" and (value is None or value == ""):
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(bad, where=where, fix="give a non-empty string")
    return value


def _find_repo(start: Path) -> Path:
    """The top of the work tree containing ``start`` (git is asked later; here: a marker walk)."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate
    return start


def load_config(
    repo: Path | str | None = None, overrides: Mapping[str, object] | None = None
) -> Config:
    """Read ``[tool.rollsafe]`` from ``repo``'s pyproject.toml and apply flag overrides.

    ``overrides`` maps key names (dashes or underscores) to values; a ``None``
    value means "flag not given" and leaves the file's value in place.
    """
    start = Path(repo) if repo is not None else Path.cwd()
    if not start.is_dir():
        # Checked before the walk up: a mistyped --repo inside a repository
        # would otherwise silently select the enclosing one.
        raise ConfigError(
            "repository folder does not exist", where=str(start), fix="pass --repo PATH"
        )
    root = _find_repo(start)
    if not root.is_dir():
        raise ConfigError(
            "repository folder does not exist", where=str(root), fix="pass --repo PATH"
        )
    values: dict[str, object] = {}
    sources: list[str] = []
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"cannot parse: {exc}", where=str(pyproject), fix="fix the TOML syntax"
            ) from exc
        tool = data.get("tool", {})
        section = tool.get("rollsafe", {}) if isinstance(tool, dict) else None
        if not isinstance(section, dict):
            raise ConfigError(
                "[tool.rollsafe] must be a table", where=str(pyproject), fix="see README"
            )
        for raw_key, value in section.items():
            key = raw_key.replace("-", "_")
            if key not in KEYS:
                raise ConfigError(
                    f"unknown key `{raw_key}` in [tool.rollsafe]",
                    where=str(pyproject),
                    fix=f"known keys: {', '.join(KEYS)}",
                )
            values[key] = _coerce(key, value, f"{pyproject} [tool.rollsafe]")
        if section:
            sources.append(str(pyproject))
    for raw_key, value in (overrides or {}).items():
        key = raw_key.replace("-", "_")
        if key not in KEYS:
            raise ConfigError(f"unknown setting `{raw_key}`", fix=f"known: {', '.join(KEYS)}")
        if value is None:
            continue
        values[key] = _coerce(key, value, f"--{key.replace('_', '-')}")
        sources.append(f"--{key.replace('_', '-')}")
    return Config(repo=root, sources=tuple(sources), **values)  # type: ignore[arg-type]
