"""The ``xtuner-recipes`` command: one module per subcommand, each with ``add_parser`` and ``run``.

Exit status: 0 done (warnings allowed), 1 findings of error severity, 2 usage or internal failure.

``main(["list"])`` prints the recipes and returns 0.
"""

import argparse
import atexit
import gc
import os
import signal
import sys
import threading

from xtuner_recipes import __version__
from xtuner_recipes.cli import calibrate, doctor, gen, list_cmd, plan, prepare, set_cmd, smoke, train, validate
from xtuner_recipes.cli.common import EXIT_USAGE, report_error
from xtuner_recipes.errors import RecipeError

COMMANDS = (list_cmd, prepare, gen, set_cmd, validate, smoke, plan, train, doctor, calibrate)

EPILOG = """examples:
  xtuner-recipes list
  xtuner-recipes prepare medqa MedQA2019.xlsx -o medqa --test-ratio 0.3 --seed 1
  xtuner-recipes gen medqa --model ./internlm-chat-7b --data ./medqa/train.jsonl
  xtuner-recipes set my_config.py lr=1e-5 model.lora.r=16 --in-place
  xtuner-recipes validate internlm_chat_7b_qlora_medqa_e3.py
  xtuner-recipes smoke internlm_chat_7b_qlora_medqa_e3.py
  xtuner-recipes plan internlm_chat_7b_qlora_medqa_e3.py --gpus 8
  xtuner-recipes train internlm_chat_7b_qlora_medqa_e3.py --deepspeed deepspeed_zero2
  xtuner-recipes doctor internlm_chat_7b_qlora_medqa_e3.py
  xtuner-recipes calibrate internlm_chat_7b_qlora_medqa_e3.py

Run `xtuner-recipes COMMAND --help` for each command's options."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xtuner-recipes",
        description="Generate, edit and check XTuner fine-tuning configs before GPU hours are spent.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit status."""
    parser = build_parser()
    if any("\x00" in argument for argument in (sys.argv[1:] if argv is None else argv)):
        # No program can be given one (execve ends an argument at NUL); a caller of main() can.
        print("error: an argument holds a NUL byte, which no file name or value can contain", file=sys.stderr)
        return EXIT_USAGE
    try:
        args, extra = parser.parse_known_args(argv)
        # `set CONFIG --model M lr=1e-5`: overrides after options are still overrides.
        if extra and getattr(args, "overrides", None) is not None and not any(x.startswith("-") for x in extra):
            args.overrides += extra
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as stop:  # argparse exits 2 on bad usage, 0 on --help
        return int(stop.code or 0)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command in WRITERS and threading.current_thread() is threading.main_thread():
        # SIGTERM, and SIGHUP (the terminal closed), end the run through Python's unwinding, so its temporary
        # files go with it.
        signal.signal(signal.SIGTERM, _terminated)
        signal.signal(signal.SIGHUP, _terminated)
    try:
        return args.run(args)
    except RecipeError as error:
        return report_error(error)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `xtuner-recipes list --json | head`: the reader left; nothing more to say
        sys.stdout = None  # no flush at exit into the closed pipe
        return 0
    except RecursionError:
        print("error: the input is nested too deeply for this tool's parser", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:  # noqa: BLE001 - our bug: one line, exit 2 (XTUNER_RECIPES_DEBUG=1 shows it all)
        if os.environ.get("XTUNER_RECIPES_DEBUG"):
            raise
        print(f"internal error: {type(error).__name__}: {error} (a bug in xtuner-recipes: please report it; "
              "XTUNER_RECIPES_DEBUG=1 shows the traceback)", file=sys.stderr)
        return EXIT_USAGE


WRITERS = frozenset({"prepare", "set", "gen"})


def _terminated(number, frame):
    raise SystemExit(128 + number)


def run() -> None:
    """Console-script entry point."""
    atexit.register(_end_now)  # registered before any import inside main(): it runs after their handlers
    status = main()
    _status.append(status)
    # With torch imported, the interpreter's final garbage collections walk millions of objects
    # (0.4 s here, a quarter of a `validate`); the process is ending, so let them be.
    gc.freeze()
    sys.exit(status)


_status: list[int] = []


def _end_now() -> None:
    """The last exit handler: every other one (logging, tempfile, multiprocessing) has run; what is
    left is tearing down every module torch loaded (0.25 s more), which no output depends on."""
    if not _status:
        return  # main() did not return (an exception is on its way out): let Python finish as usual
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be written anyway
            pass
    os._exit(_status[0])
