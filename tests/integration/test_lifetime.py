"""The driver's lifetime: stop() bounded, idempotent and retryable; clean-up at exit and
on SIGTERM when stop() was never called; Ctrl-C during a job cancels that job only."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

import asyncspark
from asyncspark.errors import ContextStoppedError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _gone(paths) -> list[str]:
    return [p for p in paths if os.path.exists(p)]


async def test_stop_with_an_idle_unauthenticated_connection_is_prompt():
    sc = asyncspark.Context("local[1]")
    await sc.start()
    host, port = sc._backend.address
    # Idle connections nobody authenticates: Python 3.12's Server.wait_closed() waited
    # for them forever.
    idle = [await asyncio.open_connection(host, port) for _ in range(3)]
    bhost, bport = sc._broadcasts.server.address
    idle.append(await asyncio.open_connection(bhost, bport))
    dirs = [sc._backend.local_root, sc._block_master.offheap_dir]
    start = time.monotonic()
    await asyncio.wait_for(sc.stop(), 30)
    took = time.monotonic() - start
    assert took < 5.0, f"stop() took {took:.1f}s"
    assert not _gone(dirs)
    for reader, writer in idle:
        assert await asyncio.wait_for(reader.read(), 5) is not None  # EOF or challenge
        writer.close()


async def test_an_interrupted_stop_is_finished_by_the_next():
    sc = asyncspark.Context("local[2]")
    await sc.start()
    assert await sc.parallelize(range(10), 2).sum() == 45
    pids = [p.pid for p in sc._backend.procs.values()]
    dirs = [sc._backend.local_root, sc._block_master.offheap_dir]
    backend_stop = sc._backend.stop

    async def slow_stop():  # executors slow to exit
        await asyncio.sleep(0.5)
        await backend_stop()

    sc._backend.stop = slow_stop
    with pytest.raises(TimeoutError):  # interrupted while it waits for them
        await asyncio.wait_for(sc.stop(), 0.2)
    await sc.stop()  # finishes (and is a no-op after that)
    await sc.stop()
    assert not _gone(dirs)
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    with pytest.raises(ContextStoppedError):
        await sc.parallelize(range(3)).count()


def _run_script(code: str, tmp_path, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=REPO, TMPDIR=str(tmp_path))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kw)


_REPORT = """
    import json, sys
    def report(sc):
        ctx = getattr(sc, "_ctx", sc)
        print(json.dumps({"dirs": [ctx._backend.local_root, ctx._block_master.offheap_dir],
                          "pids": [p.pid for p in ctx._backend.procs.values()]}),
              flush=True)
"""


def _finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[dict, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"script did not finish: {err[-2000:]}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, f"no report (rc {proc.returncode}): {err[-2000:]}"
    return json.loads(lines[0]), out, err


def _assert_cleaned(info: dict) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (_gone(info["dirs"]) or any(
            psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
            for p in info["pids"])):
        time.sleep(0.1)
    assert not _gone(info["dirs"]), info
    alive = [p for p in info["pids"]
             if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert not alive, f"executors left running: {alive}"


@pytest.mark.parametrize("facade", ["async", "sync"])
def test_a_script_that_never_stops_leaves_nothing(tmp_path, facade):
    if facade == "sync":
        code = _REPORT + """
    from asyncspark.sync import SparkContext
    sc = SparkContext("local[2]")
    assert sc.parallelize(range(10), 2).sum() == 45
    report(sc)
    # no sc.stop(): the interpreter exits
    """
    else:
        code = _REPORT + """
    import asyncio, asyncspark
    async def main():
        sc = asyncspark.Context("local[2]")
        await sc.start()
        assert await sc.parallelize(range(10), 2).sum() == 45
        report(sc)
    asyncio.run(main())
    """
    proc = _run_script(code, tmp_path)
    info, _, err = _finish(proc)
    assert proc.returncode == 0, err[-2000:]
    _assert_cleaned(info)


@pytest.mark.parametrize("facade", ["async", "sync"])
def test_sigterm_of_the_driver_leaves_nothing(tmp_path, facade):
    if facade == "sync":
        code = _REPORT + """
    import time
    from asyncspark.sync import SparkContext
    sc = SparkContext("local[2]")
    report(sc)
    time.sleep(60)
    """
    else:
        code = _REPORT + """
    import asyncio, asyncspark
    async def main():
        async with asyncspark.Context("local[2]") as sc:
            report(sc)
            await asyncio.sleep(60)
    asyncio.run(main())
    """
    proc = _run_script(code, tmp_path)
    line = proc.stdout.readline()
    info = json.loads(line)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGTERM  # it still dies of SIGTERM
    _assert_cleaned(info)


def test_an_application_sigterm_handler_is_kept(tmp_path):
    code = _REPORT + """
    import signal, sys
    def mine(signum, frame):
        print("mine", flush=True)
        sys.exit(7)
    signal.signal(signal.SIGTERM, mine)
    from asyncspark.sync import SparkContext
    sc = SparkContext("local[1]")
    assert signal.getsignal(signal.SIGTERM) is mine
    report(sc)
    sys.exit(0)
    """
    proc = _run_script(code, tmp_path)
    info, _, err = _finish(proc)
    assert proc.returncode == 0, err[-2000:]
    _assert_cleaned(info)


@pytest.mark.parametrize("facade", ["async", "sync"])
def test_ctrl_c_during_a_job_cancels_that_job_only(tmp_path, facade):
    # SIGINT to the driver alone (as the terminal's Ctrl-C would be, executors aside).
    if facade == "sync":
        code = _REPORT + """
    import os, signal, threading, time
    from asyncspark.sync import SparkContext
    sc = SparkContext("local[2]")
    report(sc)
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
    start = time.monotonic()
    try:
        sc.parallelize(range(4), 2).map(lambda x: time.sleep(30)).collect()
    except KeyboardInterrupt:
        print("interrupted after", round(time.monotonic() - start, 1), flush=True)
    print("result", sc.parallelize(range(100), 4).map(lambda x: x * 2).sum(), flush=True)
    sc.stop()
    """
    else:
        code = _REPORT + """
    import asyncio, os, signal, time, asyncspark
    async def main():
        async with asyncspark.Context("local[2]") as sc:
            report(sc)
            asyncio.get_running_loop().call_later(1.0, os.kill, os.getpid(), signal.SIGINT)
            start = time.monotonic()
            try:
                await sc.parallelize(range(4), 2).map(lambda x: time.sleep(30)).collect()
            except asyncio.CancelledError:
                asyncio.current_task().uncancel()
                print("interrupted after", round(time.monotonic() - start, 1), flush=True)
            total = await sc.parallelize(range(100), 4).map(lambda x: x * 2).sum()
            print("result", total, flush=True)
    asyncio.run(main())
    """
    proc = _run_script(code, tmp_path)
    info, out, err = _finish(proc, timeout=50)
    assert proc.returncode == 0, err[-3000:]
    interrupted = [line for line in out.splitlines() if line.startswith("interrupted")]
    assert interrupted, (out, err[-3000:])
    assert float(interrupted[0].split()[-1]) < 15  # not after the 30 s tasks
    assert "result 9900" in out.splitlines(), (out, err[-3000:])
    _assert_cleaned(info)
