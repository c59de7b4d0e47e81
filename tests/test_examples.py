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


README = EXAMPLES.parent / "README.md"


def test_readme_quick_start_runs(tmp_path) -> None:
    """The README's Python blocks, in order, as one script in a scratch directory."""
    import re

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 4
    script = tmp_path / "quick_start.py"
    script.write_text("\n".join(blocks), encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "InvalidTransition" in proc.stdout


def test_readme_starts_with_the_two_commands() -> None:
    """First the main job, then exactly the test command .ci/run runs."""
    lines = README.read_text(encoding="utf-8").splitlines()
    first = lines.index("```bash") + 1
    install_and_demo = lines[first].split("#")[0].strip()
    install_and_test = lines[first + 1].split("#")[0].strip()
    assert install_and_demo == "pip install . && actionqueue demo"
    ci = (EXAMPLES.parent / ".ci" / "run").read_text(encoding="utf-8")
    install, test = (part.strip() for part in install_and_test.split("&&"))
    assert f"python3 -m {install}" in ci  # pip install -e '.[test]'
    assert test in ci.splitlines()[-1]  # the last line of .ci/run runs the suite
