"""The README is a test: its shell examples run literally, relative paths and all, in a folder laid
out the way the tutorial's user has it (a model folder, the MedQA2019 sheet, MSAgent-Bench)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES
from test_prepare import drugqa_xlsx
from tiny_model import build_tiny_model

README = Path(__file__).parents[1] / "README.md"


def blocks() -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```$", README.read_text(encoding="utf-8"), flags=re.S | re.M)


def commands(block: str) -> list[str]:
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def run(line: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_first_two_blocks_install_and_run_the_main_job_and_the_tests():
    first, second = blocks()[:2]
    assert "pip install" in first and "xtuner-recipes gen" in first
    assert "pip install -e '.[test]'" in second and "python -m pytest" in commands(second)[-1]
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text()
    assert "n==2" in ci and "pytest" in ci  # CI runs this second block, and refuses one without pytest


@pytest.fixture(scope="session")
def tutorial_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tutorial")
    build_tiny_model(folder / "internlm-chat-7b")
    drugqa_xlsx(folder / "MedQA2019.xlsx", duplicates=1)  # as the tutorial's file: 690 rows, one repeated
    (folder / "MSAgent-Bench").mkdir()
    rows = (FIXTURES / "data" / "msagent.jsonl").read_text(encoding="utf-8").splitlines()
    (folder / "MSAgent-Bench" / "train.jsonl").write_text("\n".join(rows * 10) + "\n", encoding="utf-8")
    (folder / "configs").mkdir()
    from xtuner_recipes.xtuner_info import source_dir

    for name in ("internlm_chat_7b_qlora_oasst1_e3.py", "internlm_chat_7b_qlora_alpaca_enzh_e3.py"):
        shutil.copy(next((source_dir() / "configs").rglob(name)), folder / "configs" / name)
    return folder


def test_the_main_job_in_a_new_folder(tmp_path):
    """Block 1's last line, as a newcomer runs it right after installing: the model may not exist yet."""
    (line,) = [c for c in commands(blocks()[0]) if c.startswith("xtuner-recipes")]
    result = run(line, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "internlm_chat_7b_qlora_medqa_e3.py").is_file()


def _printed(block: str, line: str) -> str | None:
    """The ``# ...`` line the README writes right under ``line`` as its output, when it quotes one exactly
    (``# medqa: 690 rows in, …``; not the ``# wrote …``-style summaries with elisions)."""
    lines = block.splitlines()
    index = next((i for i, text in enumerate(lines) if text.strip() == line.strip()), None)
    if index is None or index + 1 >= len(lines):
        return None
    following = lines[index + 1].strip()
    if not following.startswith("# ") or "…" in following or "..." in following:
        return None
    return following[2:]


@pytest.mark.slow
def test_every_example_runs_as_written(tutorial_folder):
    """prepare → gen → validate → smoke → plan → train, each line as the README prints it."""
    ran = []
    for block in blocks()[2:]:
        for line in commands(block):
            if not line.startswith("xtuner-recipes"):
                continue
            result = run(line, tutorial_folder)
            ran.append(line)
            printed = _printed(block, line)
            if printed:  # the output the README shows under the command is what it prints
                assert printed in result.stdout + result.stderr, (line, printed, result.stdout, result.stderr)
            if line.startswith("xtuner-recipes train"):
                # It validates and shows the findings; on this machine, which has no GPU, doctor's verdict stops
                # it before launching (2), with the fix. With a GPU and the pinned stack it would train.
                assert result.returncode == 2, result.stderr[-3000:]
                assert "not training: this machine cannot launch" in result.stderr and "E001" in result.stderr
            else:
                assert result.returncode == 0, (line, result.stdout[-3000:], result.stderr[-3000:])
    assert any(line.startswith("xtuner-recipes smoke") for line in ran) and len(ran) >= 8
    assert (tutorial_folder / "medqa" / "manifest.json").is_file()
    assert "<svg" in (tutorial_folder / "report.html").read_text(encoding="utf-8")
    assert (tutorial_folder / "msagent" / "train.jsonl").is_file()
