"""Every script under examples/ runs (as a user would: a subprocess, in a scratch working
directory) and exits 0, on both backends; small arguments keep it fast."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

#: Arguments that keep each example fast (a second or two); the default for the rest.
ARGS: dict[str, list[str]] = {
    "encode_decode_batch.py": ["2000"],
    "authority_worker.py": ["12"],
}

SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py"))


def test_examples_exist() -> None:
    assert {"encode_decode_batch.py", "write_and_recover.py", "scan_to_numpy.py", "authority_worker.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs(script: str, tmp_path) -> None:
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *ARGS.get(script, [])],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.strip(), f"{script} printed nothing"
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == [], f"{script} left files in its working directory"
