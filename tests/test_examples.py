"""Every script under examples/ runs (as a user would: a subprocess, in a scratch working
directory) and exits 0, on both backends; small arguments keep it fast."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from aq_testlib import PACKAGE_PARENT

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


def _python_blocks() -> list[str]:
    import re

    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


@pytest.mark.parametrize("index", range(8))
def test_readme_block_runs_alone_and_twice(tmp_path, index) -> None:
    """Each of the README's Python blocks, on its own in an empty directory, then again in
    the same directory (a reader pastes one block, and runs it twice)."""
    blocks = _python_blocks()
    assert len(blocks) == 8, "the README's Python blocks changed: update this test's range"
    script = tmp_path / "block.py"
    script.write_text(blocks[index], encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_PARENT))
    for attempt in (1, 2):
        proc = subprocess.run([sys.executable, str(script)], cwd=work, env=env, capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        assert proc.returncode == 0, f"block {index}, run {attempt}:\n{proc.stderr}"
        assert "Traceback" not in proc.stderr
    if index == 1:
        assert "InvalidTransition" in proc.stdout


@pytest.mark.slow  # the demo, then every command of the block (~10 s)
def test_readme_command_line_tour_runs(tmp_path) -> None:
    """The README's command-line tour, line by line, in an empty directory: the demo keeps
    its data dir, and the run id the tour asks for is found as it says (dump --kind RunCreated)."""
    import re

    text = README.read_text(encoding="utf-8")
    tour = text[text.index("## Command line"):]
    lines = re.search(r"```bash\n(.*?)```", tour, re.S).group(1).strip().splitlines()
    assert lines[0].startswith("actionqueue demo data")
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_PARENT), ACTIONQUEUE_NO_PROGRESS="1")
    cli = f"{sys.executable} -m actionqueue"
    run_id = None
    for line in lines:
        command = line.split("#")[0].strip().replace("actionqueue demo data", "actionqueue demo data --tasks 20")
        if "RUN_ID" in command:
            assert run_id is not None
            command = command.replace("RUN_ID", run_id)
        proc = subprocess.run(command.replace("actionqueue", cli, 1), shell=True, cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0, f"{line}\n{proc.stderr}"
        found = re.search(r"run_instance=([0-9a-f-]{36})", proc.stdout)
        if "--kind RunCreated" in command and found:
            run_id = found.group(1)
    assert run_id is not None


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
    assert test in ci.splitlines()  # .ci/run runs the README's test command, verbatim
