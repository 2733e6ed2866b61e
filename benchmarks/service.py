"""Service benchmark: examples/aiohttp_service.py under an aiohttp load generator.

Usage::

    python benchmarks/service.py [--quick] [--json] [--requests N] [--mixed-seconds S]

Each service runs in a process of its own (its own session, loopback, an ephemeral
port) and is stopped with SIGTERM (aiohttp's graceful shutdown) at the end; the load
generator runs in this process. Measured, in one invocation:

- requests/s, p50 and p99 latency at concurrency 1, 20 and 200 for (a) a one-stage job
  (``POST /words``: map + sum) and (b) a shuffle job (``POST /wordcount``:
  reduceByKey), against the asyncspark service (``local[2]``), the same endpoints whose
  handlers use ``concurrent.futures.ProcessPoolExecutor(2)`` with
  ``loop.run_in_executor``, and, when ``dask.distributed`` is installed (never a
  dependency), ``Client(asynchronous=True)`` on a ``LocalCluster`` of 2 one-thread
  workers;
- a mixed load: one heavy job a second (``POST /heavy``, many short CPU tasks in the
  pool ``batch``) plus light ``/words`` requests: the light requests' p99 alone and
  under the heavy load, with ``spark.scheduler.mode`` FIFO and FAIR. The light requests
  arrive open-loop (``--light-rate`` a second, latency from the scheduled send time), so
  that requests stuck behind a heavy job count; then the closed-loop figure (4 clients
  back to back, which send nothing while stuck and so hide head-of-line blocking);
- per load row, the CPU (user + system) per request of the service process and of its
  executors or workers: a figure less sensitive than requests/s to other load;
- after each shutdown: processes of the service left running, files left in its
  temporary directory, its ``/dev/shm`` directory left behind.

``--serve KIND`` is the service side (internal). Figures depend on the machine; run it
alone.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "aiohttp_service.py"
HEAVY_TASKS = 64  # tasks of one heavy job
HEAVY_TASK_S = 0.01  # CPU seconds of each
TEXT = "\n".join(f"the quick brown fox {i} jumps over the lazy dog {i % 7}"
                 for i in range(40))


def burn(x: float) -> float:
    """Spend ``x`` CPU seconds."""
    end = time.process_time() + x
    n = 0
    while time.process_time() < end:
        n += 1
    return x


def _example():
    """The example service, imported by name as a service's own module is: its directory
    goes on ``sys.path`` before the context starts, so the executors (which get the
    driver's path) import it too and task closures refer to its functions by name
    (the pool and Dask services' functions are pickled by name too)."""
    import importlib

    if str(EXAMPLE.parent) not in sys.path:
        sys.path.insert(0, str(EXAMPLE.parent))
    return importlib.import_module(EXAMPLE.stem)


# -- the service side -------------------------------------------------------------------

# The pool and Dask services compute the same answers as the example, in one process.
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")  # the example's tokenize()


def _words_total(text: str) -> int:
    return sum(len(_WORD.findall(line.lower())) for line in text.splitlines())


def _word_counts(text: str) -> dict:
    return dict(Counter(w for line in text.splitlines() for w in _WORD.findall(line.lower())))


def _heavy(n: int) -> int:
    return sum(1 for _ in map(burn, [HEAVY_TASK_S] * n))


async def _serve(kind: str, mode: str) -> None:
    from aiohttp import web

    import asyncspark.web as sw

    example = _example()
    shm = ""
    cleanup = None
    if kind == "asyncspark":
        app = example.create_app("local[2]", {"spark.scheduler.mode": mode}, ui=False)

        async def heavy(request):
            sc = request.app[sw.CONTEXT]
            sc.setLocalProperty("spark.scheduler.pool", "batch")
            rdd = sc.parallelize([HEAVY_TASK_S] * HEAVY_TASKS, HEAVY_TASKS)
            return web.json_response(await rdd.map(burn).count())
    else:
        app = web.Application(client_max_size=64 << 20)
        if kind == "processpool":
            from concurrent.futures import ProcessPoolExecutor

            pool = ProcessPoolExecutor(2)

            async def run(fn, arg):
                return await asyncio.get_running_loop().run_in_executor(pool, fn, arg)

            def close() -> None:
                pool.shutdown(cancel_futures=True)
        else:
            from dask.distributed import Client, LocalCluster

            cluster = await LocalCluster(n_workers=2, threads_per_worker=1,
                                         asynchronous=True, dashboard_address=None)
            client = await Client(cluster, asynchronous=True)

            async def run(fn, arg):
                return await client.submit(fn, arg, pure=False)

            async def close_dask() -> None:
                await client.close()
                await cluster.close()
            cleanup = close_dask

        async def words(request):
            return web.json_response({"total": await run(_words_total, await request.text())})

        async def wordcount(request):
            counts = await run(_word_counts, await request.text())
            return web.json_response({"counts": counts, "distinct": len(counts),
                                      "total": sum(counts.values())})

        async def heavy(request):
            # the same CPU as the asyncspark job's tasks, spread over both workers
            half = HEAVY_TASKS // 2
            return web.json_response(sum(await asyncio.gather(run(_heavy, half),
                                                              run(_heavy, half))))

        app.router.add_post("/words", words)
        app.router.add_post("/wordcount", wordcount)
        if kind == "processpool":
            app.on_cleanup.append(lambda _app: asyncio.to_thread(close))
    app.router.add_post("/heavy", heavy)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    if kind == "asyncspark":
        shm = app[sw.CONTEXT]._block_master.offheap_dir or ""
    print(f"PORT {port} SHM {shm}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()  # graceful: the cleanup context stops the asyncspark context
    if cleanup is not None:
        await cleanup()


# -- the load side ----------------------------------------------------------------------

class Server:
    """A service process in its own session and temporary directory."""

    def __init__(self, kind: str, mode: str = "FAIR") -> None:
        self.kind = kind
        self.tmp = tempfile.mkdtemp(prefix="asyncspark-service-bench-")
        env = {**os.environ, "TMPDIR": self.tmp}
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, "--mode", mode],
            stdout=subprocess.PIPE, text=True, start_new_session=True, env=env)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"the {kind} service did not start (said {line!r})")
        fields = line.split()
        self.port = int(fields[1])
        self.shm = fields[3] if len(fields) > 3 else ""
        self.url = f"http://127.0.0.1:{self.port}"

    def cpu(self) -> tuple[float, float]:
        """CPU seconds (user + system) of the service process and of its descendants
        (executors, pool or Dask workers) so far."""
        import psutil

        proc = psutil.Process(self.proc.pid)
        t = proc.cpu_times()
        workers = 0.0
        for child in proc.children(recursive=True):
            try:
                c = child.cpu_times()
            except psutil.NoSuchProcess:
                continue
            workers += c.user + c.system
        return t.user + t.system, workers

    def stop(self) -> dict:
        """SIGTERM, then what was left behind."""
        import psutil

        pgid = self.proc.pid
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        members = []
        deadline = time.monotonic() + 5
        while True:
            members = []
            for p in psutil.process_iter():
                try:
                    if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                        members.append(p)
                except (ProcessLookupError, psutil.NoSuchProcess):
                    continue
            if not members or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if members:
            os.killpg(pgid, signal.SIGKILL)
        files = [str(p) for p in Path(self.tmp).rglob("*")]
        shutil.rmtree(self.tmp, ignore_errors=True)
        return {"exit_code": self.proc.returncode, "processes_left": len(members),
                "files_left": len(files),
                "shm_left": bool(self.shm) and os.path.exists(self.shm)}


async def load(url: str, path: str, body: bytes, n: int, concurrency: int) -> dict:
    """``n`` POSTs, at most ``concurrency`` in flight: requests/s and latencies."""
    import aiohttp

    latencies: list[float] = []
    errors = 0
    sem = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one() -> None:
            nonlocal errors
            async with sem:
                t0 = time.perf_counter()
                async with session.post(url + path, data=body) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - t0)

        await one()  # connection and first-job warm-up, not counted
        latencies.clear()
        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        elapsed = time.perf_counter() - t0
    return {"requests": n, "concurrency": concurrency, "errors": errors,
            "rps": round(n / elapsed, 1), **_percentiles(latencies)}


def _percentiles(latencies: list[float]) -> dict:
    if not latencies:
        return {"p50_ms": None, "p99_ms": None}
    qs = statistics.quantiles(latencies, n=100, method="inclusive") \
        if len(latencies) > 1 else [latencies[0]] * 99
    return {"p50_ms": round(qs[49] * 1000, 2), "p99_ms": round(qs[98] * 1000, 2)}


async def mixed(url: str, seconds: float, heavy: bool, rate: float) -> dict:
    """Light ``/words`` requests arriving open-loop at ``rate`` a second for ``seconds``
    (each sent at its scheduled time whether or not earlier ones are answered, its
    latency counted from that time: a closed-loop client stuck behind a heavy job
    sends, and so counts, nothing while stuck), with one ``/heavy`` job started each
    second when ``heavy``; then, as long again, the closed-loop figure of 4 clients
    sending back to back (the older measure, blind to head-of-line blocking)."""
    import aiohttp

    body = TEXT.encode()
    latencies: list[float] = []
    closed: list[float] = []
    heavy_done = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await (await session.post(url + "/words", data=body)).read()  # warm

        async def one(due: float) -> None:
            async with session.post(url + "/words", data=body) as resp:
                await resp.read()
            latencies.append(time.perf_counter() - due)

        async def open_loop(start: float, end: float) -> None:
            pending = []
            i = 0
            while (due := start + i / rate) < end:
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                pending.append(asyncio.ensure_future(one(due)))
                i += 1
            await asyncio.gather(*pending)

        async def closed_loop(end: float) -> None:
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                async with session.post(url + "/words", data=body) as resp:
                    await resp.read()
                closed.append(time.perf_counter() - t0)

        async def heavies(end: float) -> None:
            nonlocal heavy_done
            jobs = []
            while time.perf_counter() < end:
                jobs.append(asyncio.ensure_future(session.post(url + "/heavy", data=b"")))
                await asyncio.sleep(1.0)
            for resp in await asyncio.gather(*jobs):
                await resp.read()
                heavy_done += resp.status == 200

        start = time.perf_counter()
        await asyncio.gather(open_loop(start, start + seconds),
                             *([heavies(start + seconds)] if heavy else []))
        end = time.perf_counter() + seconds
        await asyncio.gather(*(closed_loop(end) for _ in range(4)),
                             *([heavies(end)] if heavy else []))
    return {"light_requests": len(latencies), "heavy_jobs": heavy_done, "rate": rate,
            **_percentiles(latencies), "max_ms": round(max(latencies) * 1000, 2),
            "closed_loop": {"light_requests": len(closed), **_percentiles(closed)}}


async def run(args: argparse.Namespace) -> dict:
    kinds = ["asyncspark", "processpool"]
    if importlib.util.find_spec("dask") and importlib.util.find_spec("distributed"):
        kinds.append("dask")
    n_of = {1: args.requests // 4, 20: args.requests, 200: args.requests * 2}
    body = TEXT.encode()
    report: dict = {"command": " ".join(["python", "benchmarks/service.py", *sys.argv[1:]]),
                    "machine": f"{platform.machine()}, {os.cpu_count()} cpus, "
                               f"Python {platform.python_version()}",
                    "kinds": kinds, "load": [], "mixed": [], "shutdown": []}
    for kind in kinds:
        server = Server(kind)
        try:
            # not counted: the executors' or workers' start-up, first imports, caches
            await load(server.url, "/words", body, 40, 20)
            await load(server.url, "/wordcount", body, 40, 20)
            for job, path in (("one-stage", "/words"), ("shuffle", "/wordcount")):
                for c in (1, 20, 200):
                    n = max(n_of[c], c)
                    before = server.cpu()
                    row = await load(server.url, path, body, n, c)
                    after = server.cpu()
                    # CPU per request (user + system, from the kernel's accounts): less
                    # sensitive to other load on the machine than requests/s
                    row["service_cpu_us"] = round((after[0] - before[0]) / (n + 1) * 1e6)
                    row["workers_cpu_us"] = round((after[1] - before[1]) / (n + 1) * 1e6)
                    report["load"].append({"service": kind, "job": job, **row})
        finally:
            report["shutdown"].append({"service": kind, **server.stop()})
    for mode in ("FIFO", "FAIR"):
        server = Server("asyncspark", mode)
        try:
            alone = await mixed(server.url, args.mixed_seconds, False, args.light_rate)
            loaded = await mixed(server.url, args.mixed_seconds, True, args.light_rate)
        finally:
            report["shutdown"].append({"service": f"asyncspark {mode}", **server.stop()})
        report["mixed"].append({
            "mode": mode, "alone": alone, "with_heavy": loaded,
            "p99_ratio": _ratio(loaded["p99_ms"], alone["p99_ms"]),
            "closed_loop_p99_ratio": _ratio(loaded["closed_loop"]["p99_ms"],
                                            alone["closed_loop"]["p99_ms"])})
    return report


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def _table(report: dict) -> str:
    out = [f"$ {report['command']}", f"# {report['machine']}", "",
           f"{'service':<12} {'job':<10} {'conc':>5} {'reqs':>5} {'req/s':>8} "
           f"{'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'cpu µs/req':>10} {'workers':>8}"]
    out.extend(f"{r['service']:<12} {r['job']:<10} {r['concurrency']:>5} "
               f"{r['requests']:>5} {r['rps']:>8} {r['p50_ms']:>8} {r['p99_ms']:>8} "
               f"{r['errors']:>6} {r['service_cpu_us']:>10} {r['workers_cpu_us']:>8}"
               for r in report["load"])
    out.append("(cpu µs/req: the service process's CPU per request, user + system; "
               "workers: its executors' or workers'; CPU clocks tick at 10 ms, so rows "
               "of few requests are coarse)")
    rate = report["mixed"][0]["alone"]["rate"] if report["mixed"] else 0
    out += ["", "mixed load: light /words p99 (ms) alone / with 1 heavy job per second "
                f"({HEAVY_TASKS} x {HEAVY_TASK_S * 1000:g} ms tasks)",
            f"  open loop (light requests arrive at {rate:g}/s, latency from the scheduled "
            "send time):"]
    for m in report["mixed"]:
        a, h = m["alone"], m["with_heavy"]
        out.append(f"  {m['mode']}: {a['p99_ms']} / {h['p99_ms']} (x{m['p99_ratio']}; "
                   f"max {a['max_ms']} / {h['max_ms']}; {h['light_requests']} light "
                   f"requests, {h['heavy_jobs']} heavy jobs in both phases)")
    out.append("  closed loop (4 clients back to back; blind to head-of-line blocking):")
    for m in report["mixed"]:
        a, h = m["alone"]["closed_loop"], m["with_heavy"]["closed_loop"]
        out.append(f"  {m['mode']}: {a['p99_ms']} / {h['p99_ms']} "
                   f"(x{m['closed_loop_p99_ratio']}; {h['light_requests']} light requests)")
    out += ["", "after shutdown:"]
    for s in report["shutdown"]:
        out.append(f"  {s['service']}: exit {s['exit_code']}, {s['processes_left']} "
                   f"processes, {s['files_left']} temp files, /dev/shm dir left: "
                   f"{s['shm_left']}")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test: few requests, a short mixed load")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--requests", type=int, default=None,
                        help="requests at concurrency 20 (1/4 at 1, 2x at 200)")
    parser.add_argument("--mixed-seconds", type=float, default=None,
                        help="seconds of each phase of the mixed load (6; --quick 0.75)")
    parser.add_argument("--light-rate", type=float, default=100.0,
                        help="light requests a second in the open-loop mixed load "
                             "(default 100)")
    parser.add_argument("--serve", choices=["asyncspark", "processpool", "dask"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="FAIR", choices=["FIFO", "FAIR"],
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        import asyncspark

        asyncspark.run(_serve(args.serve, args.mode))
        return 0
    if args.requests is None:
        args.requests = 40 if args.quick else 400
    if args.mixed_seconds is None:
        args.mixed_seconds = 0.75 if args.quick else 6.0
    if args.requests < 4 or args.mixed_seconds <= 0 or args.light_rate <= 0:
        parser.error("--requests must be at least 4, --mixed-seconds and --light-rate "
                     "positive")
    report = asyncio.run(run(args))
    report["params"] = {"quick": args.quick, "requests": args.requests,
                        "mixed_seconds": args.mixed_seconds, "light_rate": args.light_rate}
    print(json.dumps(report, indent=2) if args.json else _table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
