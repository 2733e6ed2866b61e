"""The ``asyncspark`` command. Today it has one subcommand::

    asyncspark bench [SCENARIO ...] [--vs multiprocessing] [--runs N] [--json] ...

(``asyncspark bench --help`` lists the options; the harness is ``asyncspark.bench``.)
``asyncspark --version`` prints the version.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="asyncspark",
                                     description="asyncspark's command-line tools")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"asyncspark {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser("bench", add_help=False,
                   help="scheduler latency, throughput and start-up benchmarks")
    args, _rest = parser.parse_known_args(argv[:1])
    if args.command == "bench":
        from .bench import main as bench_main

        return bench_main(argv[1:], prog="asyncspark bench")
    parser.error(f"unknown command {args.command!r}")  # unreachable: argparse checks
    return 2


if __name__ == "__main__":
    sys.exit(main())
