"""The REST API under ``/api/v1``, shaped like Spark's monitoring API: the same paths,
field names and status strings, answered from the status store (``ui/store.py``).

Routes: ``applications``, ``applications/{id}/jobs[/{jobId}]``,
``applications/{id}/stages[/{stageId}[/{attempt}[/taskList|taskSummary]]]``,
``applications/{id}/executors``, ``allexecutors``, ``storage/rdd[/{rddId}]``,
``environment``, and ``version``. ``?status=`` filters jobs (``running``, ``succeeded``,
``failed``, ``unknown``) and stages (``active``, ``complete``, ``pending``, ``failed``,
``skipped``) as Spark's; ``taskSummary?quantiles=0.0,0.25,0.5,0.75,1.0``;
``taskList?offset=&length=&sortBy=&status=``; ``?details=true`` on ``stages`` and
``?taskStatus=`` on stage details.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from .store import StatusStore

__all__ = ["CLOSING", "GAUGES", "LOOP", "STORAGE", "STORE", "STORES", "add_rest_routes"]

# The application's keys (ui/__init__.py fills them).
STORE = web.AppKey("asyncspark_store", StatusStore)
STORAGE: web.AppKey[Callable[[], list[dict[str, Any]]]] = web.AppKey("asyncspark_storage")
GAUGES: web.AppKey[Callable[[], Mapping[str, tuple[str, float]]]] = web.AppKey(
    "asyncspark_gauges")
LOOP: web.AppKey[Callable[[], asyncio.AbstractEventLoop | None]] = web.AppKey("asyncspark_loop")
CLOSING = web.AppKey("asyncspark_closing", asyncio.Event)
# The history server: a callable returning {application id: store}, refreshed on each call
STORES: web.AppKey[Callable[[], dict[str, StatusStore]]] = web.AppKey("asyncspark_stores")

_JOB_STATUSES = {"RUNNING", "SUCCEEDED", "FAILED", "UNKNOWN"}
_STAGE_STATUSES = {"ACTIVE", "COMPLETE", "PENDING", "FAILED", "SKIPPED"}
_TASK_STATUSES = {"RUNNING", "SUCCESS", "FAILED", "KILLED"}
DEFAULT_QUANTILES = [0.0, 0.25, 0.5, 0.75, 1.0]


def _store(request: web.Request) -> StatusStore:
    return request.app[STORE]


def _json(data: Any) -> web.Response:
    return web.json_response(data, dumps=_dumps)


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, indent=2, default=str)


def _not_found(message: str) -> web.HTTPNotFound:
    return web.HTTPNotFound(text=message)


def _int(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    try:
        return int(raw)
    except ValueError:
        raise web.HTTPNotFound(text=f"{name} must be an integer, got {raw!r}") from None


def _check_app(request: web.Request) -> StatusStore:
    app_id = request.match_info["app"]
    stores = request.app.get(STORES)
    if stores is not None:
        store = stores().get(app_id)
    else:
        store = _store(request)
        store = store if app_id == store.app_id else None
    if store is None:
        raise _not_found(f"no such app: {app_id}")
    return store


def _status_filter(request: web.Request, allowed: set[str]) -> str | None:
    values = request.query.getall("status", [])
    wanted = [v.strip().upper() for raw in values for v in raw.split(",") if v.strip()]
    for w in wanted:
        if w not in allowed:
            raise web.HTTPBadRequest(
                text=f"unknown status {w.lower()!r}; expected one of "
                     f"{', '.join(sorted(s.lower() for s in allowed))}")
    return ",".join(wanted) or None


async def applications(request: web.Request) -> web.Response:
    stores = request.app.get(STORES)
    if stores is not None:
        apps = [s.application() for s in stores().values()]
        return _json(sorted(apps, key=lambda a: a["attempts"][0]["startTimeEpoch"],
                            reverse=True))
    return _json([_store(request).application()])


async def application(request: web.Request) -> web.Response:
    return _json(_check_app(request).application())


async def jobs(request: web.Request) -> web.Response:
    store = _check_app(request)
    return _json(store.job_list(_status_filter(request, _JOB_STATUSES)))


async def job(request: web.Request) -> web.Response:
    store = _check_app(request)
    job_id = _int(request, "job")
    data = store.job(job_id)
    if data is None:
        raise _not_found(f"unknown job: {job_id}")
    return _json(data)


async def stages(request: web.Request) -> web.Response:
    store = _check_app(request)
    out = store.stage_list(_status_filter(request, _STAGE_STATUSES))
    if request.query.get("details", "false").lower() == "true":
        ts = _task_status(request)
        out = [store.stage(s["stageId"], s["attemptId"], task_status=ts) or s for s in out]
    return _json(out)


def _task_status(request: web.Request) -> str | None:
    """Spark's ``?taskStatus=`` (RUNNING, SUCCESS, FAILED, KILLED) on stage details."""
    raw = request.query.get("taskStatus")
    if raw is None:
        return None
    if raw.upper() not in _TASK_STATUSES:
        raise web.HTTPBadRequest(text=f"unknown taskStatus {raw!r}; expected one of "
                                      f"{', '.join(sorted(_TASK_STATUSES))}")
    return raw.upper()


async def stage_attempts(request: web.Request) -> web.Response:
    store = _check_app(request)
    stage_id = _int(request, "stage")
    ts = _task_status(request)
    attempts = [store.stage(s["stageId"], s["attemptId"], task_status=ts)
                for s in store.stage_attempts(stage_id)]
    if not attempts:
        raise _not_found(f"unknown stage: {stage_id}")
    return _json(attempts)


def _attempt(request: web.Request) -> tuple[StatusStore, int, int]:
    store = _check_app(request)
    stage_id, attempt = _int(request, "stage"), _int(request, "attempt")
    if (stage_id, attempt) not in store.stages:
        raise _not_found(f"unknown attempt {attempt} of stage {stage_id}")
    return store, stage_id, attempt


async def stage_attempt(request: web.Request) -> web.Response:
    store, stage_id, attempt = _attempt(request)
    return _json(store.stage(stage_id, attempt, task_status=_task_status(request)))


async def task_summary(request: web.Request) -> web.Response:
    store, stage_id, attempt = _attempt(request)
    raw = request.query.get("quantiles")
    qs = DEFAULT_QUANTILES
    if raw:
        try:
            qs = [float(q) for q in raw.split(",")]
        except ValueError:
            raise web.HTTPBadRequest(text=f"bad quantiles {raw!r}: expected e.g. "
                                          "0.0,0.25,0.5,0.75,1.0") from None
        if any(not 0.0 <= q <= 1.0 for q in qs):
            raise web.HTTPBadRequest(text=f"quantiles must be between 0 and 1, got {raw!r}")
    return _json(store.task_summary(stage_id, attempt, qs))


async def task_list(request: web.Request) -> web.Response:
    store, stage_id, attempt = _attempt(request)
    q = request.query
    try:
        offset, length = int(q.get("offset", 0)), int(q.get("length", 20))
    except ValueError:
        raise web.HTTPBadRequest(text="offset and length must be integers") from None
    status = q.get("status")
    if status is not None and status.upper() not in _TASK_STATUSES:
        raise web.HTTPBadRequest(text=f"unknown status {status!r}; expected one of "
                                      f"{', '.join(sorted(_TASK_STATUSES))}")
    return _json(store.task_list(stage_id, attempt, offset, length, q.get("sortBy", "ID"),
                                 status))


async def executors(request: web.Request) -> web.Response:
    return _json(_check_app(request).executor_list(active_only=True))


async def all_executors(request: web.Request) -> web.Response:
    return _json(_check_app(request).executor_list(active_only=False))


def storage_rdds(request: web.Request, store: StatusStore | None = None) -> list[dict[str, Any]]:
    provider = request.app.get(STORAGE)
    if provider is not None:
        return provider()
    return (store or _store(request)).rdd_storage()


async def storage(request: web.Request) -> web.Response:
    store = _check_app(request)
    return _json([{k: v for k, v in r.items() if k not in ("partitions", "dataDistribution")}
                  for r in storage_rdds(request, store)])


async def storage_rdd(request: web.Request) -> web.Response:
    store = _check_app(request)
    rdd_id = _int(request, "rdd")
    for r in storage_rdds(request, store):
        if r["id"] == rdd_id:
            return _json(r)
    raise _not_found(f"unknown rdd: {rdd_id}")


async def environment(request: web.Request) -> web.Response:
    return _json(_check_app(request).environment)


async def version(request: web.Request) -> web.Response:
    from .. import __version__

    return _json({"spark": __version__})


def add_rest_routes(app: web.Application) -> None:
    r = app.router
    base = "/api/v1/applications"
    a = base + "/{app}"
    r.add_get("/api/v1/version", version)
    r.add_get(base, applications)
    r.add_get(a, application)
    r.add_get(a + "/jobs", jobs)
    r.add_get(a + "/jobs/{job}", job)
    r.add_get(a + "/stages", stages)
    r.add_get(a + "/stages/{stage}", stage_attempts)
    r.add_get(a + "/stages/{stage}/{attempt}", stage_attempt)
    r.add_get(a + "/stages/{stage}/{attempt}/taskSummary", task_summary)
    r.add_get(a + "/stages/{stage}/{attempt}/taskList", task_list)
    r.add_get(a + "/executors", executors)
    r.add_get(a + "/allexecutors", all_executors)
    r.add_get(a + "/storage/rdd", storage)
    r.add_get(a + "/storage/rdd/{rdd}", storage_rdd)
    r.add_get(a + "/environment", environment)
