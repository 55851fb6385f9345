"""scripts/setup.sh runs pip only when pyproject.toml or the script changed since the last install
(its stamp), so a second `make run` starts serving in seconds. Run here with a stand-in for
.venv/bin/python that records what it is asked to do."""

import os
import shutil
import subprocess

from .conftest import ROOT

FAKE_PYTHON = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/../calls.log"
"""


def setup_sh(project):
    return subprocess.run(["bash", "scripts/setup.sh"], cwd=project, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHON": "false"})  # creating a venv would fail: there is one


def calls(project):
    log = project / ".venv" / "calls.log"
    calls = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return calls


def test_pip_runs_only_when_the_project_changed(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)

    first = setup_sh(tmp_path)
    assert first.returncode == 0, first.stderr
    installs = [c for c in calls(tmp_path) if c.startswith("-m pip install")]
    assert [c.split()[-1] for c in installs] == ['pip>=23.3', "torch==2.13.0", ".[dev]"], "torch before the project"

    again = setup_sh(tmp_path)
    assert again.returncode == 0 and not [c for c in calls(tmp_path) if "pip" in c], "unchanged: no pip"

    with open(tmp_path / "pyproject.toml", "a") as f:
        f.write("\n# a new dependency\n")
    setup_sh(tmp_path)
    assert any(c.endswith(".[dev]") for c in calls(tmp_path)), "pyproject.toml changed: installed again"
    setup_sh(tmp_path)
    assert not [c for c in calls(tmp_path) if "pip" in c]
