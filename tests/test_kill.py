"""Kill `prepare` and `set` at random moments (SIGKILL and SIGTERM), into a new and an existing target:
the target is always entirely the old result or entirely the new one, and the next run leaves no
temporary file behind."""

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
KILLS = 8  # half at random moments, half at the moment of publishing


def snapshot(path: Path):
    """A file's bytes, a folder's files by name, or None when absent."""
    if path.is_dir():
        return {p.name: p.read_bytes() for p in sorted(path.iterdir())}
    return path.read_bytes() if path.exists() else None


def restore(path: Path, state) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    if isinstance(state, dict):
        path.mkdir()
        for name, data in state.items():
            (path / name).write_bytes(data)
    elif state is not None:
        path.write_bytes(state)


def leftovers(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir() if p.name.startswith(f".{target.name}."))


def command(*args) -> list[str]:
    return [sys.executable, "-m", "xtuner_recipes", *map(str, args)]


def run(args, cwd) -> float:
    start = time.perf_counter()
    subprocess.run(command(*args), cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def wait_for_publishing(target: Path, process, limit: float) -> None:
    """Until the run's finished output waits beside the target to be published (or the run ends)."""
    finished = "manifest.json" if target.suffix != ".py" else ""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline and process.poll() is None:
        for entry in target.parent.glob(f".{target.name}.xr-stage-*"):
            if not finished or (entry / finished).exists():
                return
        time.sleep(0.001)


def kill_at_random(args, cwd, target: Path, old, new, duration: float, rng: random.Random) -> dict:
    """KILLS runs, each killed after a random delay; after each, the target is old or new, and a
    full run (which must clean what the killed one left) leaves no temporary."""
    outcomes = {"old": 0, "new": 0}
    for number in range(KILLS):
        restore(target, old)
        process = subprocess.Popen(command(*args), cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if number % 2:  # anywhere in the run
            time.sleep(rng.uniform(0, duration))
        else:  # at the moment the output is published: its staged copy is complete, the swap is next
            wait_for_publishing(target, process, 10 * duration)
            time.sleep(rng.uniform(0, 0.01))
        process.send_signal(rng.choice([signal.SIGKILL, signal.SIGTERM]))
        process.wait()
        state = snapshot(target)
        assert state in (old, new), f"mixed or partial output after a kill: {sorted(state or [])}"
        outcomes["old" if state == old else "new"] += 1
        subprocess.run(command(*args), cwd=cwd, check=True, capture_output=True)
        assert snapshot(target) == new and not leftovers(target), leftovers(target)
    return outcomes


def medqa_input(folder: Path, rows: int) -> Path:
    path = folder / "medqa.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(rows):
            options = {letter: f"option {letter} {i}" for letter in "ABCD"}
            handle.write(json.dumps({"question": f"question {i} about a dose?", "options": options,
                                     "answer_idx": "B", "answer": options["B"], "meta_info": "step1"}) + "\n")
    return path


@pytest.mark.parametrize("existing", [False, True], ids=["new-target", "existing-target"])
def test_killed_prepare_leaves_the_old_or_the_new_output(tmp_path, existing):
    rng = random.Random(7 + existing)
    data = medqa_input(tmp_path, 20_000)
    out = tmp_path / "out"
    args = ["prepare", "medqa", data, "-o", out, "--test-ratio", "0.1", "--seed", "2", "--force"]
    old = None
    if existing:  # an earlier output with another split
        run(["prepare", "medqa", data, "-o", out, "--test-ratio", "0.3", "--seed", "1"], tmp_path)
        old = snapshot(out)
    restore(out, None)
    duration = run(args, tmp_path)
    new = snapshot(out)
    assert set(new) == {"train.jsonl", "test.jsonl", "manifest.json"} and new != old
    outcomes = kill_at_random(args, tmp_path, out, old, new, duration, rng)
    assert outcomes["old"], outcomes  # kills during the run left the old output


def test_a_hangup_cleans_what_the_run_staged(tmp_path):
    """SIGHUP (the terminal closed) unwinds like SIGTERM: no staging folder is left for the next run to clean."""
    data = medqa_input(tmp_path, 20_000)
    out = tmp_path / "out"
    args = ["prepare", "medqa", data, "-o", out, "--test-ratio", "0.1", "--seed", "2"]
    process = subprocess.Popen(command(*args), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.perf_counter() + 60
    while not list(tmp_path.glob(".out.xr-stage-*")) and process.poll() is None and time.perf_counter() < deadline:
        time.sleep(0.005)
    assert process.poll() is None, "prepare finished before it could be hung up on"
    process.send_signal(signal.SIGHUP)
    assert process.wait() == 128 + signal.SIGHUP
    assert not leftovers(out) and snapshot(out) is None


@pytest.mark.parametrize("existing", [False, True], ids=["new-target", "existing-target"])
def test_killed_set_leaves_the_old_or_the_new_config(tmp_path, tiny_model, existing):
    rng = random.Random(11 + existing)
    config = tmp_path / "cfg.py"
    run(["gen", "medqa", "--model", tiny_model, "-o", config], tmp_path)
    target = config if existing else tmp_path / "edited.py"
    args = ["set", config, "lr=1e-5", "max_epochs=1"] + (["--in-place"] if existing else ["-o", target, "--force"])
    old = snapshot(target)
    duration = run(args, tmp_path)
    new = snapshot(target)
    assert new != old and b"lr = 1e-5" in new
    kill_at_random(args, tmp_path, target, old, new, duration, rng)
