import json
import subprocess
import sys

import pytest

from conftest import FIXTURES, load_config, write_jsonl

RECIPES = {
    "oasst1": ("oasst1.jsonl", "guanaco_map_fn"),
    "medqa": ("medqa_us.jsonl", "medqa_map_fn"),
    "msagent": ("msagent.jsonl", "msagent_map_fn"),
}


@pytest.mark.parametrize("task", sorted(RECIPES))
def test_generated_config_loads_with_the_given_paths(cli, tmp_path, task):
    data_name, mapper = RECIPES[task]
    data = tmp_path / data_name
    data.write_bytes((FIXTURES / "data" / data_name).read_bytes())
    out = tmp_path / f"{task}.py"
    cli("gen", task, "--model", "./my-model", "--data", str(data), "-o", out, check_rc=0)
    config = load_config(out)
    assert config.pretrained_model_name_or_path == "./my-model"
    assert config.data_path == str(data)
    assert config.model.llm.pretrained_model_name_or_path == "./my-model"
    assert config.train_dataset.dataset == {"type": config.train_dataset.dataset.type, "path": "json",
                                            "data_files": {"train": str(data)}}
    map_fn = config.train_dataset.dataset_map_fn
    assert callable(map_fn) and map_fn.__name__ == mapper
    first = json.loads(data.read_text(encoding="utf-8").splitlines()[0])
    assert map_fn(first)["conversation"]


def test_default_name_follows_xtuner_and_missing_model_only_warns(cli, tmp_path):
    result = cli("gen", "medqa", "--model", "./internlm-chat-7b", check_rc=0)
    out = tmp_path / "internlm_chat_7b_qlora_medqa_e3.py"
    assert out.is_file()
    assert "does not exist yet" in result.stderr
    assert "next: xtuner-recipes train internlm_chat_7b_qlora_medqa_e3.py --deepspeed deepspeed_zero2" in result.stdout
    assert load_config(out).pretrained_model_name_or_path == "./internlm-chat-7b"


def test_name_follows_max_epochs_override(cli, tmp_path):
    cli("gen", "oasst1", "--model", "./m", "--set", "max_epochs=1", check_rc=0)
    assert (tmp_path / "m_qlora_oasst1_e1.py").is_file()


def test_never_overwrites_without_force(cli, tmp_path):
    out = tmp_path / "cfg.py"
    out.write_text("# mine\n")
    result = cli("gen", "medqa", "--model", "./m", "-o", out, check_rc=2)
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert out.read_text() == "# mine\n"
    cli("gen", "medqa", "--model", "./m", "-o", out, "--force", check_rc=0)
    assert "medqa_map_fn" in out.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["cfg.py"]  # no temporary file left behind


@pytest.mark.parametrize(
    "setting, message",
    [("lrr=1e-4", "did you mean lr"), ("lr='fast'", "is not of type 'number'"), ("batch_size=-1", "minimum"),
     ("prompt_template=internlm3_chat", "did you mean"), ("lr", "KEY=VALUE")],
)
def test_bad_set_exits_2_and_writes_nothing(cli, tmp_path, setting, message):
    result = cli("gen", "medqa", "--model", "./m", "--set", setting, check_rc=2)
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_set_values_reach_the_loaded_config(cli, tmp_path):
    cli("gen", "medqa", "--model", "./m", "-o", "c.py", "--set", "lr=1e-4", "--set", "max_length=1024",
        "--set", "batch_size=2", "--set", "prompt_template=qwen_chat", check_rc=0)
    config = load_config(tmp_path / "c.py")
    assert config.optim_wrapper.optimizer.lr == 1e-4
    assert config.train_dataset.max_length == 1024
    assert config.train_dataloader.batch_size == 2
    assert "<|im_start|>" in config.prompt_template.INSTRUCTION


@pytest.mark.parametrize(
    "model_config, template",
    [({"model_type": "internlm2"}, "internlm2_chat"), ({"model_type": "qwen2"}, "qwen_chat"),
     ({"model_type": "llama", "vocab_size": 128256}, "llama3_chat"), ({"model_type": "internlm"}, "internlm_chat")],
)
def test_prompt_template_follows_the_model(cli, tmp_path, model_config, template):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(model_config))
    result = cli("gen", "oasst1", "--model", model, "-o", "c.py", "--json", check_rc=0)
    summary = json.loads(result.stdout)
    assert summary["prompt_template"] == template and "config.json" in summary["template_source"]
    assert f"PROMPT_TEMPLATE.{template}" in (tmp_path / "c.py").read_text()


def test_set_prompt_template_beats_config_json(cli, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "internlm2"}')
    cli("gen", "oasst1", "--model", model, "-o", "c.py", "--set", "prompt_template=internlm_chat", check_rc=0)
    assert "prompt_template = PROMPT_TEMPLATE.internlm_chat" in (tmp_path / "c.py").read_text()


def test_data_folder_loads_with_data_dir(cli, tmp_path):
    folder = tmp_path / "guanaco"
    folder.mkdir()
    write_jsonl(folder / "x_train.jsonl", [{"text": "### Human: a### Assistant: b"}])
    cli("gen", "oasst1", "--model", "./m", "--data", folder, "-o", "c.py", check_rc=0)
    assert load_config(tmp_path / "c.py").train_dataset.dataset.data_dir == str(folder)


def test_gen_imports_no_torch(tmp_path):
    code = (
        "import sys; from xtuner_recipes.cli import main; "
        "rc = main(['gen', 'medqa', '--model', './m', '-o', 'c.py']); "
        "heavy = [m for m in ('torch', 'mmengine', 'xtuner', 'transformers') if m in sys.modules]; "
        "print(rc, heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.stdout.splitlines()[-1] == "0 []", result.stderr


def test_help_shows_examples(cli):
    for command in ("list", "gen", "set"):
        result = cli(command, "--help", check_rc=0)
        assert "examples:" in result.stdout and f"xtuner-recipes {command}" in result.stdout


def test_list_names_every_recipe(cli):
    result = cli("list", "--json", check_rc=0)
    assert [r["name"] for r in json.loads(result.stdout)] == ["oasst1", "medqa", "msagent"]


def test_python_dash_m_runs_the_same_cli(tmp_path):
    result = subprocess.run([sys.executable, "-m", "xtuner_recipes", "list"], capture_output=True, text=True)
    assert result.returncode == 0 and "medqa" in result.stdout


def test_gen_refuses_a_spreadsheet_as_data_and_points_to_prepare(cli, tmp_path):
    (tmp_path / "MedQA2019.xlsx").write_bytes(b"PK\x03\x04 not opened")
    result = cli("gen", "medqa", "--model", "./internlm-chat-7b", "--data", "MedQA2019.xlsx")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "xtuner-recipes prepare medqa MedQA2019.xlsx" in result.stderr
    assert not list(tmp_path.glob("*.py"))  # nothing written


def test_gen_says_when_the_models_positions_make_xtuner_drop_the_data(cli, tmp_path, tiny_model):
    """A model of 64 positions: gen lowers max_length to 64, and MS-Agent's prompts (API descriptions) are longer,
    so xtuner would drop every sample (T003): said when the config is written, not found later."""
    import shutil

    model = tmp_path / "short-chat"
    shutil.copytree(tiny_model, model, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 64}))
    done = cli("gen", "msagent", "--model", model, "--data", FIXTURES / "data" / "msagent.jsonl", "-o",
               tmp_path / "ms.py", check_rc=0)
    assert "max_length 2048 lowered to 64" in done.stderr
    assert "warning: T003: 3 of 3 samples have no output token within max_length 64" in done.stderr
