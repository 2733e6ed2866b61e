"""Executor process lifetime (issue #11 item 5): executors are in a session of their own,
so the terminal's Ctrl-C (SIGINT to the driver's process group) never reaches them, and
they die with the driver at once (a parent-death signal), even while a task holds the GIL.

Each test runs a driver script in a process group of its own, so signals for "the
terminal's group" reach only that driver and what shares its group.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from asyncspark.scheduler.backends.local import _exited

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="process groups and PR_SET_PDEATHSIG: Linux")

IDLE_DRIVER = textwrap.dedent("""
    import asyncio, signal
    import asyncspark

    async def main():
        async with asyncspark.Context("local[2]") as sc:
            computed = sc.accumulator(0)

            def count(x):
                computed.add(1)
                return x

            rdd = sc.parallelize(range(100), 4).map(count).cache()
            first = await rdd.collect()
            pids = sorted(p.pid for p in sc._backend.procs.values())
            # An idle prompt: the REPL catches the KeyboardInterrupt and goes on.
            got = asyncio.Event()
            asyncio.get_running_loop().add_signal_handler(signal.SIGINT, got.set)
            print("READY", *pids, flush=True)
            await got.wait()
            await asyncio.sleep(1.5)  # long enough for dying executors to be replaced
            again = await rdd.collect()
            after = sorted(p.pid for p in sc._backend.procs.values())
            print("AFTER", after == pids, again == first, computed.value, flush=True)

    asyncio.run(main())
""")

GIL_DRIVER = textwrap.dedent("""
    import asyncio, os, sys
    import asyncspark

    def hold_the_gil(_, marker=sys.argv[1]):
        import re
        open(marker, "w").close()
        # Catastrophic backtracking: seconds to hours in C, never releasing the GIL.
        re.match(r"(a+)+$", "a" * 40 + "b")
        return 0

    async def main():
        async with asyncspark.Context("local[1]") as sc:
            print("PIDS", *[p.pid for p in sc._backend.procs.values()], flush=True)
            print("DIRS", sc._backend.local_root, sc._block_master.offheap_dir, flush=True)
            await sc.parallelize([1], 1).map(hold_the_gil).collect()

    asyncio.run(main())
""")


def start_driver(script: str, tmp_path, *args) -> subprocess.Popen:
    path = tmp_path / "driver.py"
    path.write_text(script)
    return subprocess.Popen([sys.executable, str(path), *args], stdout=subprocess.PIPE,
                            text=True, start_new_session=True, cwd=tmp_path)


def read_line(proc: subprocess.Popen, prefix: str) -> list[str]:
    for line in proc.stdout:  # type: ignore[union-attr]
        if line.startswith(prefix):
            return line.split()[1:]
    raise AssertionError(f"driver exited ({proc.wait()}) before printing {prefix}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def test_sigint_to_the_terminal_group_leaves_executors_and_cache_alive(tmp_path):
    driver = start_driver(IDLE_DRIVER, tmp_path)
    try:
        pids = [int(p) for p in read_line(driver, "READY")]
        assert len(pids) == 2
        assert all(os.getpgid(p) != driver.pid for p in pids)  # not in its group
        os.killpg(driver.pid, signal.SIGINT)  # what Ctrl-C at its terminal does
        same_pids, same_data, computed = read_line(driver, "AFTER")
        assert same_pids == "True"  # no executor died or was replaced
        assert same_data == "True"
        assert computed == "100"  # the second collect read the cache: nothing recomputed
        assert driver.wait(60) == 0
    finally:
        stop(driver)


def test_executors_die_at_once_with_a_sigkilled_driver_while_a_task_holds_the_gil(tmp_path):
    marker = tmp_path / "task-started"
    driver = start_driver(GIL_DRIVER, tmp_path, str(marker))
    dirs: list[str] = []
    try:
        pids = [int(p) for p in read_line(driver, "PIDS")]
        dirs = read_line(driver, "DIRS")
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < deadline, "the task never started"
            time.sleep(0.02)
        time.sleep(0.2)  # well inside the regex now
        os.kill(driver.pid, signal.SIGKILL)
        killed = time.monotonic()
        while not all(_exited(p) for p in pids):
            assert time.monotonic() - killed < 3.0, (
                "executor outlived its SIGKILLed driver by 3 s (no parent-death signal?)")
            time.sleep(0.01)
        print(f"executor gone {time.monotonic() - killed:.3f}s after the driver")
    finally:
        stop(driver)
        for pid in pids if "pids" in locals() else []:
            if not _exited(pid):
                os.kill(pid, signal.SIGKILL)
        for d in dirs:  # what the killed driver could not remove
            shutil.rmtree(d, ignore_errors=True)
