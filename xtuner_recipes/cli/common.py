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


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (``--gpus``, ``--nodes``, ``--sample``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def positive_number(text: str) -> float:
    """An argparse type: a finite number above 0 (``--gpu-mem``, ``--host-mem`` in GiB)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value


def port(text: str) -> int:
    """An argparse type: a TCP port, 1-65535."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 1 to 65535, got {text!r}")
    return value


def preset(text: str) -> str:
    """An argparse type: a ``--deepspeed`` value, not empty."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a DeepSpeed preset (deepspeed_zero2, ...), a JSON file or 'none'")
    return text


def report_error(error) -> int:
    print(f"error: {error}", file=sys.stderr)
    return EXIT_USAGE


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def print_json(value) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))
