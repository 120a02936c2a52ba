"""No traceback for a user's mistake, anywhere: each command gets random arguments, configs and data
rows (JSON of any shape, wrong types, NaN, BOM, CRLF, NUL, deep nesting, huge lines; configs nested past Python's
parser, 5,000-digit integers, numbers no flag can use, a FIFO, paths no one can write) and must exit 0,
1 or 2 with one-line errors — no traceback, no "internal error" — and write nothing but its output."""

import contextlib
import io
import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = 200
HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]

FLAGS = ["--json", "--force", "-o", "out.py", "--in-place", "--level", "static", "load", "full", "--sample", "0", "-1",
         "--set", "lr=1", "lr=1j", "a.b.c=", "~", "~model", "model.lora.r=0", "medqa", "oasst1", "msagent", "nope",
         "cfg.py", "data.jsonl", "missing.py", "--model", "./m", "--data", "--gpus", "0", "nan", "--test-ratio", "1.5",
         "--seed", "--steps", "all", "--device", "cuda", "--keep", "kept", "--format", "json", "text", "--gpu-mem",
         "--zero-stage", "9", "--work-dir", "--nodes", "-", ".", "..", "/dev/null", "--help",
         # numbers no flag can use, and the flags that take them (issue #30's hostile run)
         "inf", "-inf", "1e999", "-4", "--gpu", "h100", "p400", "--host-mem", "--port", "70000", "--addr",
         "--deepspeed", "", "deepspeed_zero3", "--report", "r.html", "9" * 5000,
         # a FIFO in the folder (as config, data, output), and a place no one can write, root included
         "fifo", "/proc/out.py", "/proc/kept"]
ARGS = st.lists(st.one_of(st.sampled_from(FLAGS), st.text(max_size=12)), max_size=7)

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                    max_leaves=15)
ROW = st.one_of(
    JSON.map(lambda value: json.dumps(value)),
    st.fixed_dictionaries({}, optional={"question": JSON, "options": JSON, "answer": JSON, "text": JSON,
                                        "conversations": JSON, "answer_idx": JSON}).map(json.dumps),
    st.text(max_size=60),
    st.sampled_from(["[" * 300 + "]" * 300, '{"text": "' + "x" * 100_000 + '"}', "\x00\x00", '{"text": NaN}',
                     '\ufeff{"text": "### Human: a### Assistant: b"}', '{"text": "\\ud800"}']),
)
DATA = st.tuples(st.lists(ROW, max_size=8), st.sampled_from(["\n", "\r\n"]), st.booleans())


@pytest.fixture(scope="session")
def base_config(tmp_path_factory, tiny_model):
    from xtuner_recipes.cli import main

    folder = tmp_path_factory.mktemp("base")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["gen", "medqa", "--model", str(tiny_model), "--data", "./data.jsonl", "-o",
                     str(folder / "cfg.py")]) == 0
    return (folder / "cfg.py").read_text(encoding="utf-8")


LITERALS = ["0", "-1", "None", "1e999", "[]", "{}", "'x'", "dict(type='nope')", "2.5", "True", "float('nan')",
            "9" * 5000, "-" * 200 + "1"]
# Configs Python's own parser cannot read (MemoryError, RecursionError) or convert (a 5,000-digit integer).
PAST_THE_PARSER = ["x = " + "-" * 100_000 + "1\n", "x = " + "+".join(["1"] * 200_000) + "\n", "x = " + "9" * 5000 + "\n"]


@st.composite
def configs(draw, base: str):
    """The generated config with random edits, or text that is hardly a config at all."""
    kind = draw(st.sampled_from(["edit", "edit", "edit", "garbage", "deep", "bytes", "parser"]))
    if kind == "parser":
        return draw(st.sampled_from(PAST_THE_PARSER))
    if kind == "garbage":
        return draw(st.text(max_size=200))
    if kind == "deep":
        depth = draw(st.integers(50, 400))
        return "x = " + "[" * depth + "]" * depth + "\n"
    if kind == "bytes":
        return draw(st.sampled_from(["\x00", "\ufeff" + base, base.replace("\n", "\r\n"), base + "\x00"]))
    lines = base.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["delete", "value", "insert"]))
        if action == "delete":
            del lines[index]
        elif action == "insert":
            lines.insert(index, draw(st.sampled_from(["import nope", "x = (", "train_dataloader = None",
                                                      "batch_size = 0", "max_length = -5", "def f(:"])))
        elif "=" in lines[index]:
            lines[index] = lines[index].split("=", 1)[0] + "= " + draw(st.sampled_from(LITERALS))
        if not lines:
            break
    return "\n".join(lines) + "\n"


def run_cli(folder: Path, args: list[str]) -> tuple[int, str]:
    from xtuner_recipes.cli import main

    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(args)
    finally:
        os.chdir(cwd)
    return rc, err.getvalue() + out.getvalue()


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"")
            for p in folder.rglob("*") if not p.is_symlink()}


def outputs(args: list[str]) -> set[str]:
    """What the arguments name as written: -o X, --keep X, and the config with --in-place."""
    named = {args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-o", "--output", "--keep")}
    if "--in-place" in args:
        named |= {a for a in args if a.endswith(".py")}
    return {str(Path(name)) for name in named}


def check(folder: Path, command: str, args: list[str]) -> None:
    before = files(folder)
    rc, text = run_cli(folder, [command, *args])
    assert rc in (0, 1, 2), (rc, text)
    assert "Traceback" not in text and "internal error" not in text, text
    after = files(folder)
    changed = {name for name in set(before) | set(after) if before.get(name) != after.get(name)}
    allowed = outputs(args)
    stray = {name for name in changed if not any(name == a or name.startswith(a.rstrip("/") + "/") for a in allowed)}
    assert not stray, (stray, args)


def workspace(tmp_path_factory, tiny_model, config: str, data) -> Path:
    rows, newline, bom = data
    folder = tmp_path_factory.mktemp("case")
    (folder / "cfg.py").write_text(config, encoding="utf-8", errors="surrogatepass", newline="")
    (folder / "data.jsonl").write_bytes(("\ufeff" if bom else "").encode() +
                                        newline.join(rows).encode("utf-8", "surrogatepass"))
    (folder / "m").symlink_to(tiny_model)
    os.mkfifo(folder / "fifo")  # read by nothing: a command that opened it would wait forever
    return folder


def property_test(command, *, slow=False, invalid_only=False):
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=HEALTH)
    @given(data=st.data())
    def test(tmp_path_factory, tiny_model, base_config, data):
        config = data.draw(configs(base_config))
        if invalid_only:  # train and smoke would start a real training run on a good config
            config += "\nbatch_size = 0\n"
        folder = workspace(tmp_path_factory, tiny_model, config, data.draw(DATA))
        args = data.draw(st.one_of(st.just([]), ARGS))  # often the plain command on the config: a real run
        if data.draw(st.booleans()):
            args = ["cfg.py", *args]
        try:
            check(folder, command, args)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    test.__name__ = f"test_{command}_never_shows_a_traceback"
    return pytest.mark.slow(test) if slow else test


test_list_never_shows_a_traceback = property_test("list")
test_gen_never_shows_a_traceback = property_test("gen")
test_set_never_shows_a_traceback = property_test("set")
test_prepare_never_shows_a_traceback = property_test("prepare")
test_validate_never_shows_a_traceback = property_test("validate", slow=True)
test_plan_never_shows_a_traceback = property_test("plan", slow=True)
test_smoke_never_shows_a_traceback = property_test("smoke", slow=True, invalid_only=True)
test_train_never_shows_a_traceback = property_test("train", slow=True, invalid_only=True)
