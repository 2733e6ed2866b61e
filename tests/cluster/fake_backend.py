"""A fake ``ClusterBackend`` for the contract suite: its "executors" are coroutines of
this process that connect to the driver address (and fail to start, with exit code 2,
when nothing listens there), hold the connection and "exit" when killed or crashed."""

from __future__ import annotations

import asyncio
import itertools
import tempfile

from asyncspark.scheduler.backends.cluster import ExecutorSpec, ProcessAllocator

_pids = itertools.count(10_000_000)


class _FakeProcess:
    def __init__(self) -> None:
        self.pid = next(_pids)
        self.exit: asyncio.Future = asyncio.get_running_loop().create_future()
        self.writer: asyncio.StreamWriter | None = None

    def end(self, code: int) -> None:
        if not self.exit.done():
            self.exit.set_result(code)
        if self.writer is not None:
            self.writer.close()


class FakeBackend(ProcessAllocator):
    def __init__(self, host: str = "127.0.0.1", **backoff) -> None:
        super().__init__(**backoff)
        self.host = host
        self.local_root = tempfile.mkdtemp(prefix="asyncspark-fake-")
        self.procs: dict[str, _FakeProcess] = {}

    def advertise_host(self) -> str:
        return self.host

    async def _spawn(self, executor_id: str, spec: ExecutorSpec):
        proc = _FakeProcess()
        try:
            _, proc.writer = await asyncio.open_connection(*self.driver)  # type: ignore[misc]
        except OSError:
            proc.end(2)  # as a real executor that cannot reach its driver
        self.procs[executor_id] = proc
        return proc, self.host, proc.pid

    async def _wait(self, proc):
        code = await proc.exit
        for eid, p in list(self.procs.items()):
            if p is proc:
                del self.procs[eid]
        return code, False, f"exited with code {code}"

    async def _terminate(self, proc) -> None:
        proc.end(-9)

    def crash(self, executor_id: str) -> None:
        self.procs[executor_id].end(-11)

    async def _release(self) -> None:
        import shutil

        shutil.rmtree(self.local_root, ignore_errors=True)
