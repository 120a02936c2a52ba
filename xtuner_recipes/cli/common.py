"""What every subcommand shares: exit codes, error and warning output, help formatting."""

import argparse
import json
import math
import sys

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def add_command(commands, name: str, summary: str, examples: str, run) -> argparse.ArgumentParser:
    """A subcommand parser whose ``--help`` ends with examples."""
    parser = commands.add_parser(
        name,
        help=summary,
        description=summary,
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=run)
    return parser


def _checked(text: str, parse, fits, expected: str):
    """``parse(text)`` when it parses and ``fits``, else argparse's error saying what was expected."""
    try:
        value = parse(text)
    except ValueError:
        value = None
    if value is None or not fits(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (``--gpus``, ``--nodes``, ``--sample``)."""
    return _checked(text, int, lambda value: value >= 1, "a whole number of at least 1")


def positive_number(text: str) -> float:
    """An argparse type: a finite number above 0 (``--gpu-mem``, ``--host-mem`` in GiB)."""
    return _checked(text, float, lambda value: math.isfinite(value) and value > 0, "a number above 0")


def port(text: str) -> int:
    """An argparse type: a TCP port, 1-65535."""
    return _checked(text, int, lambda value: 1 <= value <= 65535, "a port from 1 to 65535")


def preset(text: str) -> str:
    """An argparse type: a ``--deepspeed`` value, not empty."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a DeepSpeed preset (deepspeed_zero2, ...), a JSON file or 'none'")
    return text


def gpu_card(text: str) -> str:
    """An argparse type: a card of the time model's table (``--gpu h100``), by its name or short name."""
    from xtuner_recipes.validate.estimate import calibration, cards

    card = calibration.find_card(text)
    if card is None:
        raise argparse.ArgumentTypeError(f"unknown GPU {text!r}: expected one of {cards.names()}, or a card "
                                         "`xtuner-recipes calibrate` measured on this machine")
    return card.name


def report_error(error) -> int:
    print(f"error: {error}", file=sys.stderr)
    return EXIT_USAGE


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def print_json(value) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))
