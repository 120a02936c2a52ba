"""Shared test helpers: the CLI (in this process, or the real console script), the installed xtuner's configs
(loaded once a session), the tiny models and tokenizers (built once a session), fixture data."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
# Fixture configs are data (some fail on import on purpose), not modules for --doctest-modules.
collect_ignore_glob = ["fixtures/*"]
# A calibration the developer made on this machine (~/.cache/xtuner-recipes) would change the times the tests
# check: the tests, and the processes they start, read none unless a test makes one (tests/test_calibrate.py).
os.environ["XTUNER_RECIPES_CALIBRATION"] = str(Path(tempfile.gettempdir()) / f"xtuner-recipes-tests-{os.getpid()}"
                                               / "no-calibration.json")


# The longest tests first, so that pytest-xdist (pyproject's addopts) starts each worker on one and fills in
# with the short ones: the suite then ends when the work does, not when the last long test started late does.
LONGEST_FIRST = ("test_training_install.py", "test_slurm.py", "test_shipped_configs.py", "test_nodes.py",
                 "test_readme.py::test_every_example", "test_cli_set.py::test_every_shipped", "test_pipeline.py",
                 "test_kill.py", "test_encoding.py::test_packed")


# Fixtures made once a run (``once_a_run``): the first test that asks for one keeps its place, the others go to the
# end, so that one worker makes it while the other runs other tests instead of waiting on its lock.
MADE_ONCE = ("reports", "probed")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: next((rank for rank, name in enumerate(LONGEST_FIRST) if name in item.nodeid),
                                     len(LONGEST_FIRST)))
    later = []
    for name in MADE_ONCE:
        users = [item for item in items if name in getattr(item, "fixturenames", ())]
        later += [item for item in users[1:] if item not in later]
    items[:] = [item for item in items if item not in later] + later


def once_a_run(tmp_path_factory, worker_id: str, name: str, make):
    """``make(folder)``'s JSON-able result, made once a run: by the first pytest-xdist worker to ask, under a lock,
    in a folder of the run's shared temporary folder; the other worker reads it (xdist's recipe for a fixture made
    once: its ``loadgroup`` does not group under pytest 9, which keeps a test's id in ``_id``)."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent
    folder, made = shared / name, shared / name / "made.json"
    with FileLock(str(shared / f"{name}.lock")):
        if not made.is_file():
            folder.mkdir(exist_ok=True)
            made.write_text(json.dumps(make(folder)), encoding="utf-8")
    return json.loads(made.read_text(encoding="utf-8"))


def _cli_command() -> list[str]:
    script = shutil.which("xtuner-recipes", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "xtuner_recipes"]


@pytest.fixture(autouse=True)
def _tokenizer_in_this_process(request, monkeypatch):
    """``validate`` loads the model's tokenizer in a child process while torch imports: a second saved for a
    user's one run. A test process has torch imported and the tokenizer cached already, so there the child only
    costs; the tests of the child itself are marked ``tokenizer_child``."""
    if request.node.get_closest_marker("tokenizer_child") is None:
        from xtuner_recipes.validate import runner

        monkeypatch.setattr(runner, "_early_tokenizer", lambda flat: None)


@pytest.fixture
def cli(tmp_path, capfd):
    """Run the CLI in this process (``main(argv)``, torch imported once a session) in ``tmp_path``; returns a
    CompletedProcess with what it and its child processes wrote. ``cli_process`` runs the console script."""
    from xtuner_recipes.cli import main

    def run(*args, cwd=None, check_rc=None):
        capfd.readouterr()
        previous, colour = os.getcwd(), os.environ.get("NO_COLOR")
        handlers = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGHUP)}
        os.chdir(cwd or tmp_path)
        os.environ["NO_COLOR"] = "1"
        try:
            status = main([*map(str, args)])
        finally:
            os.chdir(previous)
            for number, handler in handlers.items():  # main() installs them for the writing commands
                signal.signal(number, handler)
            if colour is None:
                os.environ.pop("NO_COLOR", None)
            sys.stdout.flush()
            sys.stderr.flush()
        out, err = capfd.readouterr()
        result = subprocess.CompletedProcess(["xtuner-recipes", *map(str, args)], status, out, err)
        if check_rc is not None:
            assert result.returncode == check_rc, (result.stdout, result.stderr)
        return result

    return run


@pytest.fixture
def cli_process(tmp_path):
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
def shipped_loaded(xtuner_configs) -> dict:
    """Every shipped config loaded by mmengine once a session, path -> Config (or the exception it raised).
    Shared by the sweeps: read them, never change them (copy.deepcopy one to edit it)."""
    from mmengine.config import Config

    loaded = {}
    for path in xtuner_configs:
        try:
            loaded[path] = Config.fromfile(str(path))
        except Exception as error:  # noqa: BLE001 - a config mmengine can't load is L001's business
            loaded[path] = error
    return loaded


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The tiny random Llama and its sentencepiece tokenizer (tests/tiny_model.py), built once a session."""
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-chat")


@pytest.fixture(scope="session")
def tokenizer_folders(tmp_path_factory, tiny_model) -> dict[str, Path]:
    """One model folder (config.json and tokenizer, no weights) per tokenizer family xtuner treats differently,
    built once a session: llama (sentencepiece, bos), internlm2 (remote code, chat markers), qwen (byte-level
    BPE, no bos), no-bos (a llama tokenizer without a bos token, which xtuner's encode_fn fails on)."""
    import json

    from tiny_model import build_internlm2_style_tokenizer, build_tiny_model, build_tiny_qwen2

    base = tmp_path_factory.mktemp("tokenizers")
    folders = {"llama": tiny_model, "internlm2": build_internlm2_style_tokenizer(base / "internlm2"),
               "qwen": build_tiny_qwen2(base / "tiny-qwen2-chat"),
               "no-bos": build_tiny_model(base / "no-bos", weights=False)}
    for name, update in (("tokenizer_config.json", {"bos_token": None, "add_bos_token": False}),
                         ("special_tokens_map.json", {"bos_token": None})):
        settings = json.loads((folders["no-bos"] / name).read_text())
        (folders["no-bos"] / name).write_text(json.dumps({**settings, **update}))
    return folders


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def load_config(path):
    from mmengine.config import Config

    return Config.fromfile(str(path))
