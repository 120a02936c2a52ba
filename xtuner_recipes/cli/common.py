"""What every subcommand shares: exit codes, error and warning output, help formatting."""

import argparse
import json
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


def report_error(error) -> int:
    print(f"error: {error}", file=sys.stderr)
    return EXIT_USAGE


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def print_json(value) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))
