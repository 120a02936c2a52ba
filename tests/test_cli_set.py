"""``set`` through the console script, on configs xtuner ships."""

import difflib
import json
import subprocess

import pytest

from conftest import _cli_command as _cli
from conftest import load_config


def shipped(xtuner_configs, name):
    return next(p for p in xtuner_configs if p.name == name)


def test_tutorial_edit_done_right(cli, tmp_path, xtuner_configs):
    source = shipped(xtuner_configs, "internlm_chat_7b_qlora_oasst1_e3.py")
    copy = tmp_path / source.name
    copy.write_text(source.read_text())
    cli("set", copy, "--model", "./internlm-chat-7b", "--data", "./train.jsonl", "--in-place", check_rc=0)
    config = load_config(copy)
    assert config.pretrained_model_name_or_path == "./internlm-chat-7b"
    assert config.train_dataset.dataset.path == "json"
    assert config.train_dataset.dataset.data_files == {"train": "./train.jsonl"}


@pytest.mark.slow
def test_every_shipped_config_with_lr_and_max_epochs(xtuner_configs, tmp_path):
    """set CFG lr=1e-5 max_epochs=1 [model.lora.r=8] [~model.llm.quantization_config] loads; nothing else changes."""
    from xtuner_recipes.rewrite import apply_overrides, parse_override
    from xtuner_recipes.rewrite.api import parse_config
    from xtuner_recipes.rewrite.locate import bindings, resolve

    checked = 0
    for path in xtuner_configs:
        source = path.read_text(encoding="utf-8")
        module = parse_config(source)
        top = bindings(module)
        if "lr" not in top or "max_epochs" not in top:
            continue
        texts = ["lr=1e-5", "max_epochs=1"]
        lora = _has(module, ("model", "lora", "r"), resolve)
        quant = _has(module, ("model", "llm", "quantization_config"), resolve)
        texts += ["model.lora.r=8"] * lora + ["~model.llm.quantization_config"] * quant
        result = apply_overrides(source, [parse_override(t) for t in texts])
        _only_edited_lines_changed(source, result.code, lora, quant)
        out = tmp_path / path.name
        out.write_text(result.code)
        try:
            config = load_config(out)
        except ImportError:  # modelscope, openmind: not installable here (see closing note)
            continue
        assert config.lr == 1e-5 and config.max_epochs == 1, path
        if lora:
            assert config.model.lora.r == 8, path
        if quant:
            assert "quantization_config" not in config.model.llm, path
        checked += 1
    assert checked > 400


def _has(module, path, resolve):
    try:
        resolve(module, path)
        return True
    except Exception:
        return False


def _only_edited_lines_changed(before, after, lora, quant):
    matcher = difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines(), autojunk=False)
    old, new = before.splitlines(), after.splitlines()
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if tag == "delete":
            assert quant and old[i1].lstrip().startswith("quantization_config="), old[i1:i2]
            continue
        assert tag == "replace", (tag, old[i1:i2], new[j1:j2])
        for line in old[i1:i2]:
            stripped = line.lstrip()
            assert stripped.startswith(("lr =", "max_epochs =", "r =", "r=", "lora_r =")) or (
                quant and stripped.startswith(("quantization_config=", "type=BitsAndBytesConfig", "load_in", "llm_int8",
                                               "bnb_4bit", "),"))
            ), line


def test_diff_prints_and_writes_nothing(cli, tmp_path):
    config = tmp_path / "c.py"
    config.write_text("# settings\nlr = 2e-4  # why\nmax_epochs = 3\n")
    result = cli("set", config, "lr=1e-5", "--diff", check_rc=0)
    assert "-lr = 2e-4  # why\n+lr = 1e-5  # why\n" in result.stdout
    assert config.read_text() == "# settings\nlr = 2e-4  # why\nmax_epochs = 3\n"


def test_no_output_option_prints_the_new_file(cli, tmp_path):
    config = tmp_path / "c.py"
    config.write_text("lr = 2e-4\n")
    assert cli("set", config, "lr=1e-5", check_rc=0).stdout == "lr = 1e-5\n"


def test_output_is_not_overwritten_without_force(cli, tmp_path):
    config = tmp_path / "c.py"
    config.write_text("lr = 2e-4\n")
    out = tmp_path / "o.py"
    out.write_text("keep\n")
    assert "already exists" in cli("set", config, "lr=1", "-o", out, check_rc=2).stderr
    assert out.read_text() == "keep\n"
    cli("set", config, "lr=1", "-o", out, "--force", check_rc=0)
    assert out.read_text() == "lr = 1\n"


@pytest.mark.parametrize("override", ["lrr=1", "lr='x'", "~nothing"])
def test_errors_exit_2_and_leave_the_file(cli, tmp_path, override):
    config = tmp_path / "c.py"
    config.write_text("lr = 2e-4\n")
    cli("set", config, override, "--in-place", check_rc=2)
    assert config.read_text() == "lr = 2e-4\n"


def test_in_place_refuses_a_file_that_does_not_parse(cli, tmp_path):
    config = tmp_path / "c.py"
    config.write_text("lr = (\n")
    result = cli("set", config, "lr=1", "--in-place", check_rc=2)
    assert f"{config}:" in result.stderr and "not valid Python" in result.stderr
    assert config.read_text() == "lr = (\n"


def test_overrides_may_follow_options(cli, tmp_path):
    config = tmp_path / "c.py"
    cli("gen", "medqa", "--model", "./m", "-o", config, check_rc=0)
    result = cli("set", config, "--model", "./other", "lr=1e-5", "--diff", check_rc=0)
    assert "+lr = 1e-5" in result.stdout and "./other" in result.stdout
    bad = cli("set", config, "--bogus", "lr=1e-5")
    assert bad.returncode == 2 and "unrecognized arguments: --bogus" in bad.stderr


def test_data_on_modelscope_configs_loads_without_modelscope(xtuner_configs, tmp_path, cli):
    """The shipped MS-Agent configs load MSAgent-Bench through modelscope; after `set --data`
    nothing in them needs modelscope, so they load here, where it is not installed."""
    import importlib.util

    assert importlib.util.find_spec("modelscope") is None  # else this test would prove nothing
    ms = [path for path in xtuner_configs if "MsDataset" in path.read_text(encoding="utf-8")]
    assert len(ms) >= 5
    data = tmp_path / "agent.jsonl"
    data.write_text('{"conversation": [{"input": "hi", "output": "hello"}]}\n')
    outs = []
    for path in ms:
        out = tmp_path / path.name
        cli("set", path, "--data", data, "-o", out, check_rc=0)
        assert "MsDataset" not in out.read_text() and "from modelscope" not in out.read_text()
        outs.append(out)
    result = cli("validate", *outs, "--level", "load", "--format", "json")
    reports = json.loads(result.stdout)
    assert result.returncode == 0 and all(r["ok"] for r in reports), [r["findings"] for r in reports]


CONFIG = "lr = 2e-4  # keep\nmax_epochs = 3\n"


def test_in_place_keeps_crlf_line_endings_and_the_file_mode(cli, tmp_path):
    path = tmp_path / "cfg.py"
    path.write_bytes(CONFIG.replace("\n", "\r\n").encode())
    path.chmod(0o640)
    cli("set", path, "lr=1e-5", "--in-place", check_rc=0)
    assert path.read_bytes() == b"lr = 1e-5  # keep\r\nmax_epochs = 3\r\n"
    assert path.stat().st_mode & 0o777 == 0o640


def test_in_place_edits_a_symlinks_target_and_leaves_the_link(cli, tmp_path):
    target = tmp_path / "real.py"
    target.write_text(CONFIG)
    link = tmp_path / "link.py"
    link.symlink_to(target)
    cli("set", link, "lr=1e-5", "--in-place", check_rc=0)
    assert link.is_symlink() and "lr = 1e-5" in target.read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_in_place_refuses_a_read_only_file_without_force(cli, tmp_path):
    path = tmp_path / "cfg.py"
    path.write_text(CONFIG)
    path.chmod(0o444)
    refused = cli("set", path, "lr=1e-5", "--in-place")
    assert refused.returncode == 2 and "read-only" in refused.stderr and path.read_text() == CONFIG
    cli("set", path, "lr=1e-5", "--in-place", "--force", check_rc=0)
    assert "lr = 1e-5" in path.read_text() and path.stat().st_mode & 0o777 == 0o444


def test_output_force_replaces_only_a_regular_file(cli, tmp_path):
    import os

    (tmp_path / "cfg.py").write_text(CONFIG)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "link.py"
    link.symlink_to(tmp_path / "cfg.py")
    for target in (fifo, link):
        refused = cli("set", tmp_path / "cfg.py", "lr=1e-5", "-o", target, "--force")
        assert refused.returncode == 2 and "not replaced" in refused.stderr
    assert fifo.exists() and link.is_symlink() and (tmp_path / "cfg.py").read_text() == CONFIG


def test_a_file_changed_since_it_was_read_is_not_overwritten(tmp_path):
    from xtuner_recipes.errors import OutputExistsError
    from xtuner_recipes.fileio import write_atomic

    path = tmp_path / "cfg.py"
    path.write_text("lr = 1\n")  # what another editor saved after we read CONFIG
    with pytest.raises(OutputExistsError, match="changed since it was read"):
        write_atomic(path, "lr = 2\n", force=True, original=CONFIG)
    assert path.read_text() == "lr = 1\n" and [p.name for p in tmp_path.iterdir()] == ["cfg.py"]


def test_new_outputs_get_the_mode_the_umask_gives(cli, tmp_path):
    import os

    (tmp_path / "cfg.py").write_text(CONFIG)
    mask = os.umask(0o022)
    os.umask(mask)
    cli("set", tmp_path / "cfg.py", "lr=1e-5", "-o", tmp_path / "out.py", check_rc=0)
    assert (tmp_path / "out.py").stat().st_mode & 0o777 == 0o666 & ~mask


def test_inputs_are_bounded_with_a_clear_message(tmp_path, cli):
    """A config over the size limit is refused up front by set and validate (exit 2, no hang), and so are
    more overrides than one run takes."""
    import os

    config = tmp_path / "big.py"
    config.write_text("x = [" + "1, " * 5000 + "]\n")
    env = {**os.environ, "XTUNER_RECIPES_MAX_CONFIG_MB": "0.01"}
    for command in (["set", config, "x=1"], ["validate", config, "--level", "static"]):
        result = subprocess.run([*_cli(), *map(str, command)], capture_output=True, text=True, env=env)
        assert result.returncode == 2 and "reads configs up to" in result.stderr and "Traceback" not in result.stderr
    small = tmp_path / "small.py"
    small.write_text("x = 1\n")
    result = cli("set", small, *[f"v{i}={i}" for i in range(1001)])
    assert result.returncode == 2 and "at most 1000" in result.stderr
    assert small.read_text() == "x = 1\n"


def test_data_finds_the_variable_the_loader_reads_or_asks_which(xtuner_configs, tmp_path, cli):
    source = shipped(xtuner_configs, "internlm_chat_7b_qlora_oasst1_e3.py").read_text(encoding="utf-8")
    renamed = tmp_path / "renamed.py"  # a public project's copy: its data variable has another name
    renamed.write_text(source.replace("data_path", "guanaco_path"), encoding="utf-8")
    out = tmp_path / "out.py"
    cli("set", renamed, "--data", "./mine.jsonl", "-o", out, check_rc=0)
    assert load_config(out).guanaco_path == "./mine.jsonl"
    assert load_config(out).train_dataloader.dataset.dataset.data_files == {"train": "./mine.jsonl"}
    both = shipped(xtuner_configs, "internlm_chat_7b_qlora_alpaca_enzh_e3.py")
    result = cli("set", both, "--data", "./mine.jsonl", "-o", tmp_path / "two.py")
    assert result.returncode == 2 and "alpaca_en_path, alpaca_zh_path" in result.stderr
    assert "--data alpaca_en_path=PATH" in result.stderr and not (tmp_path / "two.py").exists()


def test_set_on_a_dumped_config_edits_what_the_consumer_reads(tmp_path, xtuner_configs, cli):
    """mmengine's dump writes every value where it is used: `lr = 2e-4` stays at the top, read by
    nothing. `set lr=...` must change what trains (optim_wrapper.optimizer.lr) and say so."""
    dumped = tmp_path / "dumped.py"
    load_config(shipped(xtuner_configs, "internlm_chat_7b_qlora_oasst1_e3.py")).dump(str(dumped))
    out = tmp_path / "out.py"
    result = cli("set", dumped, "lr=1e-5", "max_epochs=1", "-o", out, check_rc=0)
    assert "optim_wrapper.optimizer.lr did not read lr" in result.stderr
    loaded = load_config(out)
    assert loaded.optim_wrapper.optimizer.lr == 1e-5 and loaded.lr == 1e-5
    assert loaded.train_cfg.max_epochs == 1


def test_a_keyword_the_callee_takes_is_added(cli, tmp_path, xtuner_configs):
    """`set custom_hooks.1.max_new_tokens=16`: EvaluateChatHook takes max_new_tokens (its signature), the config's
    dict doesn't write it yet: added, laid out as its neighbours, and mmengine reads it; a value of another type
    than the default, or a keyword the callee doesn't take, is refused."""
    import inspect

    from mmengine.config import Config
    from xtuner.engine.hooks import EvaluateChatHook

    config = tmp_path / "c.py"
    config.write_text(shipped(xtuner_configs, "internlm_chat_7b_qlora_oasst1_e3.py").read_text())
    done = cli("set", config, "custom_hooks.1.max_new_tokens=16", "-o", tmp_path / "out.py", check_rc=0)
    assert "added, as EvaluateChatHook takes it" in done.stderr + done.stdout
    hook = Config.fromfile(str(tmp_path / "out.py")).custom_hooks[1]
    assert hook["max_new_tokens"] == 16 and "max_new_tokens" in inspect.signature(EvaluateChatHook).parameters
    before, after = config.read_text().splitlines(), (tmp_path / "out.py").read_text().splitlines()
    assert len(after) == len(before) + 1 and "        max_new_tokens=16," in after
    refused = cli("set", config, "custom_hooks.1.max_new_tokens='many'", "-o", tmp_path / "bad.py")
    assert refused.returncode == 2 and "expected int like its default" in refused.stderr
    refused = cli("set", config, "custom_hooks.1.max_new_tokenz=16", "-o", tmp_path / "bad.py")
    assert refused.returncode == 2 and "has no 'max_new_tokenz'" in refused.stderr
    assert not (tmp_path / "bad.py").exists()


@pytest.mark.parametrize("keep_variable", [True, False], ids=["data_path-kept", "no-variable"])
def test_set_data_on_a_config_dumped_by_mmengine(cli, tmp_path, xtuner_configs, keep_variable):
    """mmengine's dump writes the data path as a literal in each loader (train_dataloader and train_dataset): with
    `data_path` kept beside them it reads nothing, so `--data` points the loaders at it; without it, the one
    literal they write is edited. Either way mmengine then loads the new path everywhere."""
    from mmengine.config import Config

    source = tmp_path / "gen.py"
    source.write_text(shipped(xtuner_configs, "internlm_chat_7b_qlora_oasst1_e3.py").read_text())
    cli("set", source, "--data", "./old.jsonl", "--in-place", check_rc=0)
    Config.fromfile(str(source)).dump(str(tmp_path / "dumped.py"))
    dumped = (tmp_path / "dumped.py").read_text()
    assert dumped.count("data_files=dict(train='./old.jsonl')") == 2
    if not keep_variable:
        dumped = "\n".join(line for line in dumped.splitlines() if not line.startswith("data_path =")) + "\n"
        (tmp_path / "dumped.py").write_text(dumped)
    done = cli("set", tmp_path / "dumped.py", "--data", "./new.jsonl", "-o", tmp_path / "out.py", check_rc=0)
    assert "2 dataset loader argument(s)" in done.stderr
    config = Config.fromfile(str(tmp_path / "out.py"))
    assert config.train_dataloader.dataset.dataset.data_files == {"train": "./new.jsonl"}
    assert config.train_dataset.dataset.data_files == {"train": "./new.jsonl"}
    assert "old.jsonl" not in (tmp_path / "out.py").read_text()


def test_set_data_on_a_loader_whose_path_is_a_placeholder(cli, tmp_path, xtuner_configs):
    """POLAR's shipped config writes `path="/your/custom/path/here"` in its one loader, a GUI's `path=''`: `--data` a
    file reads it with the JSON loader (a file as `path` fails in datasets: D007's proof), a folder with data_dir,
    a hub id as the path itself."""
    from mmengine.config import Config

    polar = shipped(xtuner_configs, "POLAR_1_8B_full_varlenattn_custom_dataset.py")
    config = tmp_path / "polar.py"
    config.write_text(polar.read_text())
    cli("set", config, "--data", "./pref.jsonl", "-o", tmp_path / "file.py", check_rc=0)
    assert Config.fromfile(str(tmp_path / "file.py")).train_dataset.dataset == {
        "type": Config.fromfile(str(config)).train_dataset.dataset["type"], "path": "json",
        "data_files": {"train": "./pref.jsonl"}}
    (tmp_path / "prefs").mkdir()
    cli("set", config, "--data", tmp_path / "prefs", "-o", tmp_path / "folder.py", check_rc=0)
    assert Config.fromfile(str(tmp_path / "folder.py")).train_dataset.dataset["data_dir"] == str(tmp_path / "prefs")
    config.write_text(polar.read_text().replace('path="/your/custom/path/here"', "path=''"))
    cli("set", config, "--data", "someone/preferences", "-o", tmp_path / "hub.py", check_rc=0)
    assert Config.fromfile(str(tmp_path / "hub.py")).train_dataset.dataset["path"] == "someone/preferences"
