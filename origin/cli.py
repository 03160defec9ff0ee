"""`spillway` command line: dispatches to the transcoder and origin subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from origin import demo, server
    from origin.admission.sfu import cli as sfu_cli
    from origin.edge import cli as edge_cli
    from origin.ops import status_cli
    from transcoder import cli as transcoder_cli

    parser = argparse.ArgumentParser(prog="spillway", description="Overflow HLS for live audio rooms.")
    sub = parser.add_subparsers(dest="command", required=True)
    transcoder_cli.add_parser(sub)
    server.add_parser(sub)
    demo.add_parser(sub)
    sfu_cli.add_parser(sub)  # spillway sfu speaker --room ID
    status_cli.add_parser(sub)  # spillway status: every room at a glance
    edge_cli.add_parser(sub)  # spillway edge render|run
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run = args.run
    code: int = run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
