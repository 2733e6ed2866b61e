"""asyncspark.web and examples/aiohttp_service.py under aiohttp's test client: the
context started and stopped with the service, 50 concurrent requests answered exactly,
a disconnecting client's job cancelled (tasks killed, executors free within 2 s), 503
under admission control, request job tags, the UI and /metrics mounted."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import sys
import time
from collections import Counter
from pathlib import Path

import cloudpickle
import psutil
import pytest
from aiohttp import ClientTimeout, web
from aiohttp.test_utils import TestClient, TestServer

import asyncspark.web as sw

pytestmark = pytest.mark.asyncio(loop_scope="function")

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("aiohttp_service",
                                               ROOT / "examples" / "aiohttp_service.py")
service = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = service
_spec.loader.exec_module(service)
# Executors cannot import the example by name: its functions travel by value, as they
# do when it runs as a script.
cloudpickle.register_pickle_by_value(service)


def spin(x):
    while True:  # pure Python: a kill interrupts it
        x += 1


def nap(x):
    time.sleep(1.0)
    return x


async def spin_handler(request: web.Request) -> web.Response:
    sc = request.app[sw.CONTEXT]
    await sc.parallelize([0, 1], 2).map(spin).collect()
    return web.Response(text="unreachable")


async def nap_handler(request: web.Request) -> web.Response:
    sc = request.app[sw.CONTEXT]
    return web.json_response(await sc.parallelize([1], 1).map(nap).collect())


async def tags_handler(request: web.Request) -> web.Response:
    sc = request.app[sw.CONTEXT]
    return web.json_response({"tag": sw.request_tag(request), "tags": sorted(sc.getJobTags()),
                              "description": sc.getLocalProperty("spark.job.description")})


def idle(sc) -> bool:
    ts = sc._task_scheduler
    return not ts.tasks and all(e.free == e.slots for e in ts.executors.values())


async def wait_until(predicate, limit: float) -> float:
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > limit:
            raise AssertionError(f"condition not met within {limit}s")
        await asyncio.sleep(0.01)
    return time.monotonic() - t0


def executor_pids(sc) -> list[int]:
    return [e.pid for e in sc._task_scheduler.executors.values()]


async def test_context_ctx_starts_and_stops_with_the_app():
    app = web.Application()
    lifecycle = sw.context_ctx("local[2]", app_name="lifecycle")
    app.cleanup_ctx.append(lifecycle)

    async def count(request):
        return web.json_response(await request.app[sw.CONTEXT].parallelize(range(10)).count())

    app.router.add_get("/count", count)
    sc = lifecycle.context
    assert sc._state == "new"
    frozen_before = gc.get_freeze_count()
    async with TestClient(TestServer(app)) as client:
        assert app[sw.CONTEXT] is sc
        assert sc._state == "running"
        # the start-up heap (the context among it) is out of the collector's way
        assert gc.get_freeze_count() > frozen_before + 10_000
        resp = await client.get("/count")
        assert await resp.json() == 10
        pids = executor_pids(sc)
        local_root = sc._backend.local_root
        assert len(pids) == 2
        assert all(psutil.pid_exists(p) for p in pids)
        assert Path(local_root).is_dir()  # noqa: ASYNC240
    # shutdown: executors gone, their directories removed, nothing left frozen
    assert sc._state == "stopped"
    assert gc.get_freeze_count() == 0
    _, alive = psutil.wait_procs([psutil.Process(p) for p in pids if psutil.pid_exists(p)],
                                    timeout=5)
    assert not alive
    assert not Path(local_root).exists()  # noqa: ASYNC240


@pytest.fixture
async def client():
    app = service.create_app("local[2]")
    app.router.add_get("/spin", spin_handler)
    app.router.add_get("/tags", tags_handler)
    async with TestClient(TestServer(app)) as c:
        yield c


def text_for(i: int) -> str:
    return "\n".join(f"w{j % (i + 2)} shared Word w{i}" for j in range(i + 3))


def expected_counts(text: str) -> Counter:
    return Counter(w for line in text.splitlines() for w in service.tokenize(line))


async def test_fifty_concurrent_requests_are_exact(client):
    texts = [text_for(i) for i in range(50)]

    async def post(path: str, text: str):
        resp = await client.post(path, data=text.encode())
        assert resp.status == 200, await resp.text()
        return await resp.json()

    answers = await asyncio.gather(*(post("/wordcount", t) for t in texts))
    for text, got in zip(texts, answers, strict=True):
        want = expected_counts(text)
        assert got == {"counts": dict(want), "distinct": len(want),
                       "total": sum(want.values())}
    tops = await asyncio.gather(*(post("/topk?k=3", t) for t in texts[:10]))
    for text, got in zip(texts[:10], tops, strict=True):
        want = sorted(expected_counts(text).items(), key=service.by_count)[:3]
        assert got == [list(kv) for kv in want]
    totals = await asyncio.gather(*(post("/words", t) for t in texts[:10]))
    assert totals == [{"total": sum(expected_counts(t).values())} for t in texts[:10]]
    bad = await client.post("/topk?k=zero", data=b"a b")
    assert bad.status == 400
    assert "k must be an integer" in await bad.text()


async def test_disconnecting_client_cancels_its_job(client):
    sc = client.app[sw.CONTEXT]
    with pytest.raises(asyncio.TimeoutError):
        await client.get("/spin", timeout=ClientTimeout(total=1.0))
    # the client went away: the handler is cancelled, its job with it
    assert await wait_until(lambda: idle(sc), limit=2.0) < 2.0
    assert sc.statusTracker().getActiveJobsIds() == []
    resp = await client.post("/words", data=b"still serving")
    assert await resp.json() == {"total": 2}


async def test_requests_get_their_own_job_tag(client):
    first = await (await client.get("/tags")).json()
    second = await (await client.get("/tags")).json()
    assert first["tag"] != second["tag"]
    assert first["tags"] == [first["tag"]]
    assert second["tags"] == [second["tag"]]
    assert first["description"] == "GET /tags"


async def test_ui_and_metrics_are_mounted(client):
    await client.post("/words", data=b"one two")
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert "asyncspark_" in await resp.text()
    resp = await client.get("/spark/api/v1/applications")
    assert resp.status == 200
    assert (await resp.json())[0]["name"] == "aiohttp-service"


async def test_503_under_admission_control():
    app = service.create_app("local[2]", {"asyncspark.scheduler.maxActiveJobs": 1}, ui=False)
    app.router.add_get("/nap", nap_handler)
    async with TestClient(TestServer(app)) as c:
        sc = app[sw.CONTEXT]
        slow = asyncio.ensure_future(c.get("/nap"))
        await wait_until(lambda: sc._task_scheduler.tasks, limit=10)
        resp = await c.post("/words", data=b"a b c")
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "1"
        assert "maxActiveJobs = 1" in await resp.text()
        assert (await slow).status == 200
        resp = await c.post("/words", data=b"a b c")
        assert await resp.json() == {"total": 3}
