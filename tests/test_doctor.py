"""`doctor`: the real probes on this machine's stack, what a config needs, and each error shown failing in
the library that needs the missing piece."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from xtuner_recipes.cli import main
from xtuner_recipes.doctor import Needs, diagnose, run_probes
from xtuner_recipes.doctor.needs import needs_of_config, needs_of_source

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def probed(tmp_path_factory, worker_id) -> dict:
    """This machine's stack, probed once a run (the probes import xtuner's train script: seconds)."""
    from conftest import once_a_run

    return once_a_run(tmp_path_factory, worker_id, "probed", lambda folder: run_probes())


def _bnb_broken(probed) -> bool:
    return not probed["probes"]["bitsandbytes"]["ok"]


def test_the_probes_read_this_machines_stack(probed):
    import torch

    assert probed["versions"]["torch"] == torch.__version__.split("+")[0] or probed["versions"]["torch"] == torch.__version__
    assert probed["probes"]["torch"]["ok"] and probed["probes"]["torch"]["cuda"] == torch.cuda.is_available()
    assert probed["probes"]["xtuner"]["ok"] and probed["probes"]["xtuner"]["v1"] is False
    assert probed["probes"]["torchvision"]["ok"]  # its compiled nms ran
    try:
        import deepspeed  # noqa: F401
        has_deepspeed = True
    except ImportError:
        has_deepspeed = False
    assert probed["probes"]["deepspeed"]["ok"] == has_deepspeed
    if not has_deepspeed:
        assert probed["probes"]["deepspeed"]["missing"] is True


def test_bitsandbytes_broken_by_triton_is_an_error_with_the_fix(probed, capsys):
    """This machine is the issue's stack: bitsandbytes 0.45.0 next to a triton without triton.ops."""
    if not _bnb_broken(probed):
        pytest.skip("bitsandbytes imports on this machine; the training-install test covers a working stack")
    assert "triton.ops" in probed["probes"]["bitsandbytes"]["error"]
    findings = {f.code: f for f in diagnose(Needs(), probed)}
    assert findings["E002"].severity == "error"
    assert "constraints" in findings["E002"].hint and "xtuner-0.2.0.txt" in findings["E002"].hint
    # the same through the command, as JSON
    assert main(["doctor", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert {"E002"} <= {f["code"] for f in report["findings"] if f["severity"] == "error"}
    assert report["versions"]["bitsandbytes"] == probed["versions"]["bitsandbytes"]


def test_without_lora_or_quantization_a_broken_bitsandbytes_is_only_a_warning(probed):
    if not _bnb_broken(probed):
        pytest.skip("bitsandbytes imports on this machine")
    findings = {f.code: f for f in diagnose(Needs(quantization=False, lora=False, deepspeed=None), probed)}
    assert findings["E002"].severity == "warning"


def test_no_gpu_is_a_warning_off_the_training_node_and_an_error_for_a_config_run_here(probed):
    if probed["probes"]["torch"]["cuda"]:
        pytest.skip("this machine has a GPU")
    assert {f.severity for f in diagnose(Needs(), probed) if f.code == "E001"} == {"warning"}
    assert {f.severity for f in diagnose(Needs(here=True), probed) if f.code == "E001"} == {"error"}


def test_what_a_config_needs_is_read_from_its_source(tmp_path):
    from xtuner_recipes.xtuner_info import source_dir

    shipped = source_dir() / "configs" / "internlm" / "internlm_chat_7b" / "internlm_chat_7b_qlora_oasst1_e3.py"
    needs = needs_of_config(shipped, Needs(deepspeed="deepspeed_zero3", nodes=2))
    assert needs.quantization and needs.lora and not needs.lagent and not needs.flash_attn and needs.here
    assert (needs.deepspeed, needs.nodes) == ("deepspeed_zero3", 2)  # the command line's launch is kept
    assert main(["gen", "msagent", "--model", "./internlm-chat-7b", "-o", str(tmp_path / "m.py")]) == 0
    assert needs_of_config(tmp_path / "m.py", Needs()).lagent  # plan prints `xtuner chat --lagent`
    varlen = shipped.read_text().replace("use_varlen_attn = False", "use_varlen_attn = True")
    assert needs_of_source(varlen, Needs()).flash_attn
    plain = needs_of_source("model = dict(llm=dict(type='x'))\noptim_wrapper = dict(optimizer=dict(type=PagedAdamW32bit))"
                            "\nfrom bitsandbytes.optim import PagedAdamW32bit", Needs())
    assert not plain.quantization and not plain.lora and plain.paged_optimizer
    off = needs_of_source("model = dict(llm=dict(type='x', quantization_config=None), lora=None)", Needs())
    assert not off.quantization and not off.lora  # None is no quantization and no LoRA


def test_doctor_on_a_config_it_cannot_read_is_a_usage_error(tmp_path, capsys):
    assert main(["doctor", str(tmp_path / "missing.py")]) == 2
    assert "missing.py" in capsys.readouterr().err


# ---- each error, failing in the library that needs what is missing ----

def test_E002_peft_cannot_wrap_a_model_in_lora_when_bitsandbytes_fails(probed, tmp_path):
    if not _bnb_broken(probed):
        pytest.skip("bitsandbytes imports on this machine")
    from tiny_model import build_tiny_model

    model = build_tiny_model(tmp_path / "m")
    code = ("import transformers, peft, sys\n"
            f"m = transformers.AutoModelForCausalLM.from_pretrained({str(model)!r})\n"
            "peft.get_peft_model(m, peft.LoraConfig(r=4, target_modules=['q_proj'], task_type='CAUSAL_LM'))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "triton.ops" in done.stderr, done.stderr[-2000:]


def test_E003_mmengine_deepspeed_strategy_fails_without_deepspeed(probed):
    if probed["probes"]["deepspeed"]["ok"]:
        pytest.skip("deepspeed is installed here")
    from mmengine._strategy import DeepSpeedStrategy

    with pytest.raises(AssertionError, match="DeepSpeed is not installed"):
        DeepSpeedStrategy()  # what `xtuner train --deepspeed deepspeed_zero2` builds


def test_E001_amp_optim_wrapper_refuses_a_machine_without_cuda(probed):
    if probed["probes"]["torch"]["cuda"]:
        pytest.skip("this machine has a GPU")
    import torch
    from mmengine.optim import AmpOptimWrapper

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(AssertionError, match="(?i)gpu|cuda"):
        AmpOptimWrapper(optimizer=optimizer)
