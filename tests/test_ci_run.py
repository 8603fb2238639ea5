""".ci/run lints (`make lint`: ruff + mypy --strict) after setup and before the tests, and a
lint failure fails CI. Run against stand-ins for setup, the tests, the Makefile and the
services, so nothing real is installed, linted or tested here."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _stub(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/usr/bin/env bash\n{body}\n")
    path.chmod(0o755)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(
    ("lint_rc", "ci_ok", "steps"), [(0, True, "setup lint test"), (1, False, "setup lint")]
)
def test_ci_runs_make_lint_after_setup_and_before_the_tests(
    tmp_path: Path, lint_rc: int, ci_ok: bool, steps: str
) -> None:
    tree, log = tmp_path / "tree", tmp_path / "steps.log"
    (tree / ".ci").mkdir(parents=True)
    shutil.copy2(ROOT / ".ci" / "run", tree / ".ci" / "run")
    _stub(tree / "scripts" / "setup", f"echo setup >> {log}")
    _stub(tree / "scripts" / "test", f"echo test >> {log}")
    (tree / "Makefile").write_text(f"lint:\n\t@echo lint >> {log}; exit {lint_rc}\n")
    bin_dir = tmp_path / "bin"
    for service_probe in ("pg_isready", "redis-cli"):  # PostgreSQL and Redis "already run"
        _stub(bin_dir / service_probe, "exit 0")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    done = subprocess.run(
        [str(tree / ".ci" / "run")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert (done.returncode == 0) == ci_ok, done.stderr
    assert (log.read_text().split() if log.exists() else []) == steps.split()
