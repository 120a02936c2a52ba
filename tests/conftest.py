"""Shared test helpers: the real console script, the installed xtuner's configs, fixture data."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
# Fixture configs are data (some fail on import on purpose), not modules for --doctest-modules.
collect_ignore_glob = ["fixtures/*"]


def _cli_command() -> list[str]:
    script = shutil.which("xtuner-recipes", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "xtuner_recipes"]


@pytest.fixture
def cli(tmp_path):
    """Run the real ``xtuner-recipes`` console script in ``tmp_path``; returns CompletedProcess."""

    def run(*args, cwd=None, check_rc=None):
        result = subprocess.run(
            [*_cli_command(), *map(str, args)],
            cwd=cwd or tmp_path,
            capture_output=True,
            text=True,
            env={**os.environ, "NO_COLOR": "1"},
            timeout=300,
        )
        if check_rc is not None:
            assert result.returncode == check_rc, (result.stdout, result.stderr)
        return result

    return run


@pytest.fixture(scope="session")
def xtuner_configs() -> list[Path]:
    """Every config xtuner ships (helper scripts with a ``__main__`` left out)."""
    from xtuner_recipes.xtuner_info import source_dir

    root = source_dir() / "configs"
    return sorted(
        path for path in root.rglob("*.py")
        if path.name != "__init__.py" and "__main__" not in path.read_text(encoding="utf-8")
    )


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The tiny random Llama and its sentencepiece tokenizer (tests/tiny_model.py), built once a session."""
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-chat")


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def load_config(path):
    from mmengine.config import Config

    return Config.fromfile(str(path))
