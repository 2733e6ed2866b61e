"""The ``asyncspark`` command::

    asyncspark bench [SCENARIO ...] [--vs multiprocessing] [--runs N] [--json] ...
    asyncspark history DIR [--host H] [--port P]

``bench`` runs the benchmark harness (``asyncspark bench --help``; ``asyncspark.bench``);
``history`` serves the web UI and REST API of the applications whose event logs are in
``DIR`` (``spark.eventLog.dir``), as Spark's history server (``asyncspark.ui.history``).
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
    sub.add_parser("history", add_help=False,
                   help="serve the UI and REST API of the event logs in a directory")
    args, _rest = parser.parse_known_args(argv[:1])
    if args.command == "bench":
        from .bench import main as bench_main

        return bench_main(argv[1:], prog="asyncspark bench")
    if args.command == "history":
        return history_main(argv[1:])
    parser.error(f"unknown command {args.command!r}")  # unreachable: argparse checks
    return 2


def history_main(argv: list[str]) -> int:
    import asyncio
    import os

    p = argparse.ArgumentParser(prog="asyncspark history",
                                description="Serve the web UI and REST API (/api/v1) of the "
                                "applications whose event logs are in DIR.")
    p.add_argument("directory", metavar="DIR", help="the spark.eventLog.dir of the apps")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=18080, help="0 picks a free port")
    args = p.parse_args(argv)
    if not os.path.isdir(args.directory):
        print(f"asyncspark history: {args.directory} is not a directory", file=sys.stderr)
        return 2

    async def serve() -> None:
        from .ui import UIServer
        from .ui.history import history_app

        server = UIServer(history_app(args.directory), args.host, args.port, retries=0)
        url = await server.start()
        print(f"History server of {args.directory} at {url}/", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"asyncspark history: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
