"""nox installed on its own: ``nox -l`` and a pair session work without rollsafe beside it.

Why: nox is usually installed alone (pipx, the nox GitHub Action), so
``import rollsafe`` in a noxfile fails unless the noxfile names it in a PEP
723 ``# /// script`` block, which nox's script mode installs into an
environment of its own.  This test does what such a user does: a virtualenv
holding only nox, a fresh clone of a repository whose noxfile follows the
README's recipe, ``nox -l``, then one pair session; and it lists this
repository's own sessions the same way.  It installs from the package index,
so it is slow; it still runs in the default ``nox`` run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
import venv
from pathlib import Path

import nox.project
import pytest

from tests.gitrepo import GitRepo, migration

REPOSITORY = Path(__file__).resolve().parents[1]

RECIPE = """\
# /// script
# dependencies = ["nox>=2025.2.9", "rollsafe @ {source}"]
# ///
from rollsafe.nox_sessions import upgrade_pairs_sessions

upgrade_pairs_sessions()
"""


def test_the_script_block_names_every_runtime_dependency() -> None:
    block = nox.project.load_toml(str(REPOSITORY / "noxfile.py"))
    pyproject = tomllib.loads((REPOSITORY / "pyproject.toml").read_text(encoding="utf-8"))
    named = [d for d in block["dependencies"] if not d.startswith("nox")]
    assert named == pyproject["project"]["dependencies"]


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600
    )
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
def test_nox_alone_lists_and_runs_pairs_in_a_fresh_clone(tmp_path: Path) -> None:
    # Only nox in the environment; no PYTHONPATH leaking this checkout in.
    env_dir = tmp_path / "nox-only"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    _run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "nox>=2025.2.9"], tmp_path, env)
    nox_bin = str(bin_dir / "nox")
    probe = subprocess.run(
        [str(bin_dir / "python"), "-c", "import rollsafe"], env=env, capture_output=True
    )
    assert probe.returncode != 0  # nox really is alone

    # rollsafe's source as the other repository's index would serve it.
    source = tmp_path / "rollsafe-source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPOSITORY / name, source / name)
    shutil.copytree(
        REPOSITORY / "src",
        source / "src",
        ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"),
    )
    # This repository's own noxfile first, from a clone of its committed state; the
    # script environment (one per --envdir) is then shared with the next repository.
    envdir = str(tmp_path / "nox-envs")
    own = tmp_path / "own"
    subprocess.run(["git", "clone", "-q", str(REPOSITORY), str(own)], check=True, env=env)
    listed = _run([nox_bin, "--envdir", envdir, "-l"], own, env)
    assert "* tests ->" in listed.stdout and "upgrade_pairs(" in listed.stdout, listed.stdout

    origin = GitRepo(tmp_path / "service")
    create = "-- compat: live\nCREATE TABLE m (id int);\n"
    origin.commit("machines", migration(1, "machines", create, "DROP TABLE m;\n"))
    add = "-- compat: live\nALTER TABLE m ADD COLUMN zone text;\n"
    origin.commit("zone", migration(2, "zone", add, "ALTER TABLE m DROP COLUMN zone;\n"))
    origin.commit("noxfile", {"noxfile.py": RECIPE.format(source=source.as_uri())})
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(origin.path), str(clone)], check=True, env=env)
    listed = _run([nox_bin, "--envdir", envdir, "-l"], clone, env)
    assert "upgrade_pairs(1->2)" in listed.stdout, listed.stdout + listed.stderr
    ran = _run([nox_bin, "--envdir", envdir, "-s", "upgrade_pairs(1->2)"], clone, env)
    assert "Session upgrade_pairs(1->2) was successful" in ran.stderr, ran.stdout + ran.stderr
