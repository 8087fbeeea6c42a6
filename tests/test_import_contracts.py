"""The import rules of docs/architecture.md, checked by import-linter on every run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    linter = shutil.which("lint-imports")
    assert linter, "import-linter is a dev dependency: run `uv sync`"
    result = subprocess.run([linter, "--no-cache"], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout, result.stdout
