"""The web UI's HTML pages (Spark's tabs): jobs, job detail, stages, stage detail (its
job's stage graph drawn as SVG, the summary quantiles and the task table), executors,
storage and environment. Server-rendered from the status store, no script or style from
elsewhere (no CDN); a few lines of inline script reload the page's content when the
server-sent event stream (``/events``) says the store changed.

Links are relative, so the pages work wherever the application is mounted
(``app.add_subapp("/spark", ui_app(sc))``).
"""

from __future__ import annotations

import asyncio
import html
from typing import Any

from aiohttp import web

from .rest import DEFAULT_QUANTILES, STORE, STORES, storage_rdds
from .store import StatusStore

__all__ = ["add_page_routes", "page_store", "rdd_dag_svg", "stage_dag_svg"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:0;color:#222}
nav{background:#2c3e50;padding:6px 12px}nav a{color:#eee;margin-right:16px;
text-decoration:none;font-weight:600}nav span{color:#9cf;float:right}
main{padding:8px 16px}table{border-collapse:collapse;margin:6px 0 16px}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}
th{background:#eef}.RUNNING,.ACTIVE{color:#06c}.SUCCEEDED,.COMPLETE,.SUCCESS{color:#080}
.FAILED,.KILLED{color:#c00}.SKIPPED,.PENDING{color:#888}
.bar{background:#ddd;width:160px;height:12px;display:inline-block;position:relative}
.bar i{background:#5b5;height:12px;display:block}
"""

_SCRIPT = """
(function(){if(!window.EventSource)return;var es=new EventSource(BASE+"events");
var busy=false;es.onmessage=function(){if(busy)return;busy=true;
fetch(location.href).then(function(r){return r.text()}).then(function(t){
var d=new DOMParser().parseFromString(t,"text/html");
document.querySelector("main").innerHTML=d.querySelector("main").innerHTML;
busy=false}).catch(function(){busy=false})};})();
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _page(store: StatusStore, title: str, body: str, depth: int) -> web.Response:
    base = "../" * depth
    tabs = "".join(f'<a href="{base}{p}/">{n}</a>' for p, n in (
        ("jobs", "Jobs"), ("stages", "Stages"), ("storage", "Storage"),
        ("environment", "Environment"), ("executors", "Executors")))
    text = (f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)} - "
            f"{_e(store.app_name)}</title><style>{_CSS}</style></head><body>"
            f"<nav>{tabs}<span>{_e(store.app_name)} ({_e(store.app_id)})</span></nav>"
            f"<main><h2>{_e(title)}</h2>{body}</main>"
            f"<script>var BASE={base!r};{_SCRIPT}</script></body></html>")
    return web.Response(text=text, content_type="text/html")


def _table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _status(s: str) -> str:
    return f"<span class='{_e(s)}'>{_e(s)}</span>"


def _bar(done: int, total: int, active: int = 0) -> str:
    pct = 100 * done // total if total else 0
    return (f"<span class='bar'><i style='width:{pct}%'></i></span> {done}/{total}"
            + (f" ({active} running)" if active else ""))


def _duration(start: float | None, end: float | None) -> str:
    if start is None:
        return ""
    import time

    secs = (end or time.time()) - start
    return f"{secs * 1000:.0f} ms" if secs < 1 else f"{secs:.1f} s"


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def page_store(request: web.Request) -> StatusStore:
    """The store a page shows: the application's, or (history server) the one named by
    the path's ``{app}``."""
    stores = request.app.get(STORES)
    if stores is None:
        return request.app[STORE]
    app_id = request.match_info.get("app", "")
    store = stores().get(app_id)
    if store is None:
        raise web.HTTPNotFound(text=f"no such app: {app_id}")
    return store


def _qint(request: web.Request, name: str) -> int:
    try:
        return int(request.query[name])
    except (KeyError, ValueError):
        raise web.HTTPBadRequest(text=f"missing or bad ?{name}=") from None


def _job_rows(store: StatusStore, jobs: list[dict[str, Any]], base: str) -> list[list[str]]:
    rows = []
    for j in jobs:
        raw = store.jobs[j["jobId"]]
        rows.append([
            f"<a href='{base}jobs/job/?id={j['jobId']}'>{j['jobId']}</a>"
            + (f" ({_e(j['jobGroup'])})" if j["jobGroup"] else ""),
            _e(j["description"] or j["name"]), _e(j["submissionTime"]),
            _duration(raw["_start"], raw["_end"]), _status(j["status"]),
            f"{j['numCompletedStages']}/{len(j['stageIds']) - j['numSkippedStages']}"
            + (f" ({j['numSkippedStages']} skipped)" if j["numSkippedStages"] else ""),
            _bar(j["numCompletedTasks"], j["numTasks"] - j["numSkippedTasks"],
                 j["numActiveTasks"])
            + (f" ({j['numFailedTasks']} failed)" if j["numFailedTasks"] else ""),
        ])
    return rows


_JOB_HEADERS = ["Job Id", "Description", "Submitted", "Duration", "Status",
                "Stages: Succeeded/Total", "Tasks (for all stages): Succeeded/Total"]


async def jobs_page(request: web.Request) -> web.Response:
    store = page_store(request)
    jobs = store.job_list()
    body = (f"<p>Total uptime: {_duration(store.start_time, store.end_time)}; "
            f"{len(store.jobs)} jobs retained</p>")
    for label, keep in (("Active Jobs", ("RUNNING",)), ("Completed Jobs", ("SUCCEEDED",)),
                        ("Failed Jobs", ("FAILED", "UNKNOWN"))):
        sel = [j for j in jobs if j["status"] in keep]
        body += f"<h3 id='{label.split()[0].lower()}'>{label} ({len(sel)})</h3>"
        body += _table(_JOB_HEADERS, _job_rows(store, sel, "../"), "jobs")
    return _page(store, "Spark Jobs", body, 1)


def _stage_rows(store: StatusStore, stages: list[dict[str, Any]], base: str) -> list[list[str]]:
    rows = []
    for s in stages:
        raw = store.stages[(s["stageId"], s["attemptId"])]
        link = f"{base}stages/stage/?id={s['stageId']}&attempt={s['attemptId']}"
        rows.append([
            f"<a href='{link}'>{s['stageId']}" + (
                f" (retry {s['attemptId']})" if s["attemptId"] else "") + "</a>",
            _e(s["name"]), _e(s["submissionTime"]),
            _duration(raw.get("_start"), raw.get("_end")), _status(s["status"]),
            _bar(s["numCompleteTasks"], s["numTasks"], s["numActiveTasks"])
            + (f" ({s['numFailedTasks']} failed)" if s["numFailedTasks"] else "")
            + (f" ({s['numKilledTasks']} killed)" if s["numKilledTasks"] else ""),
            _bytes(s["inputBytes"]), _bytes(s["outputBytes"]), _bytes(s["shuffleReadBytes"]),
            _bytes(s["shuffleWriteBytes"]), _e(s["failureReason"] or ""),
        ])
    return rows


_STAGE_HEADERS = ["Stage Id", "Description", "Submitted", "Duration", "Status",
                  "Tasks: Succeeded/Total", "Input", "Output", "Shuffle Read",
                  "Shuffle Write", "Failure Reason"]


async def job_page(request: web.Request) -> web.Response:
    store = page_store(request)
    job_id = _qint(request, "id")
    j = store.job(job_id)
    if j is None:
        raise web.HTTPNotFound(text=f"unknown job: {job_id}")
    totals = store.job_totals(job_id)
    stages = [s for s in store.stage_list() if s["stageId"] in j["stageIds"]]
    body = (f"<p>Status: {_status(j['status'])}<br>Submitted: {_e(j['submissionTime'])}"
            f"<br>Job group: {_e(j['jobGroup'])}<br>"
            f"Run time: {totals['executorRunTime']} ms, CPU time: "
            f"{totals['executorCpuTime'] / 1e6:.0f} ms, shuffle read "
            f"{_bytes(totals['shuffleRemoteBytesRead'] + totals['shuffleLocalBytesRead'])}, "
            f"shuffle write {_bytes(totals['shuffleWriteBytes'])}, spilled "
            f"{_bytes(totals['diskBytesSpilled'])}</p>")
    if j.get("errorMessage"):
        body += f"<pre class='FAILED'>{_e(j['errorMessage'])}</pre>"
    body += stage_dag_svg(store, j["stageIds"], None, "../../")
    body += "<h3>Stages</h3>" + _table(_STAGE_HEADERS, _stage_rows(store, stages, "../../"))
    return _page(store, f"Details for Job {job_id}", body, 2)


async def stages_page(request: web.Request) -> web.Response:
    store = page_store(request)
    stages = store.stage_list()
    body = ""
    for label, keep in (("Active Stages", "ACTIVE"), ("Pending Stages", "PENDING"),
                        ("Completed Stages", "COMPLETE"), ("Skipped Stages", "SKIPPED"),
                        ("Failed Stages", "FAILED")):
        sel = [s for s in stages if s["status"] == keep]
        body += f"<h3>{label} ({len(sel)})</h3>" + _table(
            _STAGE_HEADERS, _stage_rows(store, sel, "../"), "stages")
    return _page(store, "Stages for All Jobs", body, 1)


def stage_dag_svg(store: StatusStore, stage_ids: list[int], current: int | None,
                  base: str) -> str:
    """The stage graph of a job as SVG: a box per stage (coloured by status), an arrow
    from each parent stage to its child; ``current`` is outlined."""
    ids = sorted(set(stage_ids))
    info = {s: store.stage_info.get(s, {}) for s in ids}
    depth: dict[int, int] = {}

    def level(s: int, seen: frozenset = frozenset()) -> int:
        if s in depth:
            return depth[s]
        parents = [p for p in info.get(s, {}).get("parentIds", []) if p in info and p not in seen]
        depth[s] = 1 + max((level(p, seen | {s}) for p in parents), default=-1)
        return depth[s]

    for s in ids:
        level(s)
    columns: dict[int, list[int]] = {}
    for s in ids:
        columns.setdefault(depth[s], []).append(s)
    w, h, gap_x, gap_y = 190, 44, 50, 16
    pos = {s: (10 + d * (w + gap_x), 10 + i * (h + gap_y))
           for d, col in columns.items() for i, s in enumerate(col)}
    width = 20 + (max(columns, default=0) + 1) * (w + gap_x)
    height = 20 + max((len(c) for c in columns.values()), default=1) * (h + gap_y)
    status = {}
    for (sid, _a), st in store.stages.items():
        status[sid] = st["status"]
    colours = {"COMPLETE": "#cfc", "ACTIVE": "#cdf", "FAILED": "#fcc", "SKIPPED": "#eee",
               "PENDING": "#fff"}
    parts = [f"<svg class='dag' width='{width}' "
             f"height='{height}'><defs><marker id='arrow' viewBox='0 0 10 10' refX='10' "
             "refY='5' markerWidth='6' markerHeight='6' orient='auto'><path d='M0,0L10,5L0,"
             "10z' fill='#555'/></marker></defs>"]
    for s in ids:
        for p in info[s].get("parentIds", []):
            if p in pos:
                x1, y1 = pos[p][0] + w, pos[p][1] + h / 2
                x2, y2 = pos[s][0], pos[s][1] + h / 2
                parts.append(f"<line x1='{x1}' y1='{y1}' x2='{x2}' y2='{y2}' stroke='#555' "
                             "marker-end='url(#arrow)'/>")
    for s in ids:
        x, y = pos[s]
        st = status.get(s, "PENDING")
        stroke = "#c60" if s == current else "#555"
        name = info[s].get("name", f"stage {s}")
        parts.append(
            f"<a href='{base}stages/stage/?id={s}&amp;attempt=0'><rect x='{x}' y='{y}' "
            f"width='{w}' height='{h}' rx='6' fill='{colours.get(st, '#fff')}' "
            f"stroke='{stroke}' stroke-width='{3 if s == current else 1}'/>"
            f"<text x='{x + 8}' y='{y + 18}' font-size='12'>Stage {s} ({_e(st.lower())})"
            f"</text><text x='{x + 8}' y='{y + 34}' font-size='11'>{_e(name[:28])}</text></a>")
    parts.append("</svg>")
    return "".join(parts)


def rdd_dag_svg(rdds: list[dict[str, Any]]) -> str:
    """A stage's RDDs as SVG, Spark's stage DAG: a box per RDD (name, id, partitions),
    parents above children, an arrow per narrow dependency; an RDD reading a shuffle is
    marked so."""
    by_id = {r["id"]: r for r in rdds}
    level: dict[int, int] = {}
    for r in sorted(rdds, key=lambda r: r["id"]):  # ids grow from parents to children
        level[r["id"]] = 1 + max((level.get(p, -1) for p in r["parentIds"] if p in by_id),
                                 default=-1)
    rows: dict[int, list[int]] = {}
    for rid, lv in sorted(level.items()):
        rows.setdefault(lv, []).append(rid)
    w, h, gx, gy = 210, 40, 20, 26
    pos = {rid: (10 + i * (w + gx), 10 + lv * (h + gy))
           for lv, ids in rows.items() for i, rid in enumerate(ids)}
    width = 20 + max(len(ids) for ids in rows.values()) * (w + gx)
    height = 20 + len(rows) * (h + gy)
    parts = [f"<svg class='rdd-dag' width='{width}' height='{height}'><defs><marker "
             "id='rarrow' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='6' "
             "markerHeight='6' orient='auto'><path d='M0,0L10,5L0,10z' fill='#555'/>"
             "</marker></defs>"]
    for r in rdds:
        for p in r["parentIds"]:
            if p in pos:
                x1, y1 = pos[p][0] + w / 2, pos[p][1] + h
                x2, y2 = pos[r["id"]][0] + w / 2, pos[r["id"]][1]
                parts.append(f"<line x1='{x1}' y1='{y1}' x2='{x2}' y2='{y2}' "
                             "stroke='#555' marker-end='url(#rarrow)'/>")
    for r in rdds:
        x, y = pos[r["id"]]
        shuffled = " (reads a shuffle)" if r.get("shuffleParentIds") else ""
        parts.append(
            f"<rect x='{x}' y='{y}' width='{w}' height='{h}' rx='8' fill='#e8f0fe' "
            f"stroke='#468'/><text x='{x + 8}' y='{y + 16}' font-size='12'>"
            f"{_e(r['name'][:26])} [{r['id']}]</text><text x='{x + 8}' y='{y + 31}' "
            f"font-size='11'>{r['numPartitions']} partitions{_e(shuffled)}</text>")
    parts.append("</svg>")
    return "".join(parts)


_SUMMARY_ROWS = [
    ("Duration", lambda s: s["duration"], "ms"),
    ("Executor Run Time", lambda s: s["executorRunTime"], "ms"),
    ("Executor CPU Time", lambda s: [v / 1e6 for v in s["executorCpuTime"]], "ms"),
    ("Task Deserialization Time", lambda s: s["executorDeserializeTime"], "ms"),
    ("Result Serialization Time", lambda s: s["resultSerializationTime"], "ms"),
    ("Result Size", lambda s: s["resultSize"], "B"),
    ("Shuffle Read Size", lambda s: s["shuffleReadMetrics"]["readBytes"], "B"),
    ("Shuffle Read Records", lambda s: s["shuffleReadMetrics"]["readRecords"], ""),
    ("Shuffle Fetch Wait Time", lambda s: s["shuffleReadMetrics"]["fetchWaitTime"], "ms"),
    ("Shuffle Write Size", lambda s: s["shuffleWriteMetrics"]["writeBytes"], "B"),
    ("Shuffle Write Records", lambda s: s["shuffleWriteMetrics"]["writeRecords"], ""),
    ("Spill (Disk)", lambda s: s["diskBytesSpilled"], "B"),
]


def _fmt(v: float, unit: str) -> str:
    if unit == "B":
        return _bytes(v)
    return f"{v:.0f} {unit}".strip()


async def stage_page(request: web.Request) -> web.Response:
    store = page_store(request)
    stage_id = _qint(request, "id")
    attempt = int(request.query.get("attempt", "0") or 0)
    st = store.stage(stage_id, attempt)
    if st is None:
        raise web.HTTPNotFound(text=f"unknown attempt {attempt} of stage {stage_id}")
    job_ids = st.get("jobIds") or []
    graph_ids = [stage_id]
    for jid in job_ids:
        j = store.job(jid)
        if j is not None:
            graph_ids = j["stageIds"]
    body = (f"<p>Status: {_status(st['status'])}; tasks: {st['numCompleteTasks']} "
            f"succeeded, {st['numFailedTasks']} failed, {st['numKilledTasks']} killed of "
            f"{st['numTasks']}; jobs: {', '.join(map(str, job_ids))}</p>")
    if st["failureReason"]:
        body += f"<pre class='FAILED'>{_e(st['failureReason'])}</pre>"
    body += "<h3>DAG Visualization</h3>" + stage_dag_svg(store, graph_ids, stage_id, "../../")
    rdds = store.stage_rdds(stage_id)
    if rdds:
        body += "<h4>RDDs of this stage</h4>" + rdd_dag_svg(rdds)
    summary = store.task_summary(stage_id, attempt, DEFAULT_QUANTILES)
    n_done = st["numCompleteTasks"]
    body += f"<h3>Summary Metrics for {n_done} Completed Tasks</h3>"
    if summary and summary["duration"]:
        rows = [[_e(label)] + [_fmt(v, unit) for v in get(summary)]
                for label, get, unit in _SUMMARY_ROWS]
        body += _table(["Metric", "Min", "25th percentile", "Median", "75th percentile",
                        "Max"], rows, "summary")
    if st["accumulatorUpdates"]:
        body += "<h3>Accumulators</h3>" + _table(
            ["Accumulable", "Value"], [[_e(a.get("name")), _e(a.get("value"))]
                                       for a in st["accumulatorUpdates"]])
    body += "<h3>Aggregated Metrics by Executor</h3>" + _table(
        ["Executor ID", "Task Time", "Succeeded", "Failed", "Killed"],
        [[_e(e), f"{d['taskTime']} ms", str(d["succeededTasks"]), str(d["failedTasks"]),
          str(d["killedTasks"])] for e, d in sorted(st["executorSummary"].items())])
    rows = []
    for t in store.task_list(stage_id, attempt, 0, 1000):
        m = t["taskMetrics"] or {}
        sr = m.get("shuffleReadMetrics", {})
        sw = m.get("shuffleWriteMetrics", {})
        rows.append([str(t["index"]), str(t["taskId"]), str(t["attempt"]),
                     _status(t["status"]), _e(t["executorId"]), _e(t["launchTime"]),
                     f"{t['duration']} ms" if t["duration"] is not None else "",
                     f"{m.get('executorRunTime', 0)} ms",
                     _bytes(sr.get("localBytesRead", 0) + sr.get("remoteBytesRead", 0)),
                     _bytes(sw.get("bytesWritten", 0)),
                     _bytes(m.get("diskBytesSpilled", 0)), _e(t["errorMessage"] or "")])
    body += "<h3>Tasks</h3>" + _table(
        ["Index", "Task ID", "Attempt", "Status", "Executor ID", "Launch Time", "Duration",
         "Run Time", "Shuffle Read", "Shuffle Write", "Spill (Disk)", "Errors"], rows,
        "tasks")
    return _page(store, f"Details for Stage {stage_id} (Attempt {attempt})", body, 2)


async def executors_page(request: web.Request) -> web.Response:
    store = page_store(request)
    rows = []
    for e in store.executor_list(active_only=False):
        logs = " ".join(f"<a href='../logs/?executor={_e(e['id'])}&amp;kind={_e(k)}'>"
                        f"{_e(k)}</a>" for k in e["executorLogs"])
        rows.append([_e(e["id"]), _e(e["hostPort"]),
                     "Active" if e["isActive"] else f"Dead ({_e(e['removeReason'])})",
                     str(e["activeTasks"]), str(e["failedTasks"]), str(e["completedTasks"]),
                     str(e["totalTasks"]), f"{e['totalDuration']} ms",
                     _bytes(e["totalInputBytes"]), _bytes(e["totalShuffleRead"]),
                     _bytes(e["totalShuffleWrite"]),
                     _bytes(e["peakMemoryMetrics"]["ProcessTreePythonRSSMemory"]), logs])
    body = _table(["Executor ID", "Address", "Status", "Active Tasks", "Failed Tasks",
                   "Complete Tasks", "Total Tasks", "Task Time", "Input", "Shuffle Read",
                   "Shuffle Write", "Peak RSS", "Logs"], rows, "executors")
    return _page(store, "Executors", body, 1)


async def storage_page(request: web.Request) -> web.Response:
    store = page_store(request)
    rows = [[str(r["id"]), _e(r["name"]), _e(r["storageLevel"]),
             str(r["numCachedPartitions"]), _bytes(r["memoryUsed"]), _bytes(r["diskUsed"])]
            for r in storage_rdds(request, store)]
    body = _table(["ID", "RDD Name", "Storage Level", "Cached Partitions", "Size in Memory",
                   "Size on Disk"], rows, "storage")
    return _page(store, "Storage", body, 1)


async def environment_page(request: web.Request) -> web.Response:
    store = page_store(request)
    env = store.environment
    body = "<h3>Runtime Information</h3>" + _table(
        ["Name", "Value"], [[_e(k), _e(v)] for k, v in env.get("runtime", {}).items()])
    for section in ("sparkProperties", "systemProperties"):
        body += f"<h3>{_e(section)}</h3>" + _table(
            ["Name", "Value"], [[_e(k), _e(v)] for k, v in env.get(section, [])])
    return _page(store, "Environment", body, 1)


async def logs_page(request: web.Request) -> web.Response:
    """The tail (last 64 KiB) of an executor's log file (named by its ExecutorAdded)."""
    store = page_store(request)
    ex = store.executors.get(request.query.get("executor", ""))
    path = ex["executorLogs"].get(request.query.get("kind", "stderr")) if ex else None
    if not path:
        raise web.HTTPNotFound(text="no such executor log")
    try:
        text = await asyncio.to_thread(_tail, path, 65536)
    except OSError as exc:
        raise web.HTTPNotFound(text=f"cannot read {path}: {exc.strerror}") from None
    return web.Response(text=text, content_type="text/plain")


def _tail(path: str, n: int) -> str:
    with open(path, "rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - n))
        return f.read().decode("utf-8", "replace")


async def root(request: web.Request) -> web.Response:
    raise web.HTTPFound("jobs/")


def add_page_routes(app: web.Application, prefix: str = "") -> None:
    """The pages under ``prefix`` (the history server's ``/history/{app}``)."""
    r = app.router
    r.add_get(prefix + "/", root)
    r.add_get(prefix + "/jobs/", jobs_page)
    r.add_get(prefix + "/jobs/job/", job_page)
    r.add_get(prefix + "/stages/", stages_page)
    r.add_get(prefix + "/stages/stage/", stage_page)
    r.add_get(prefix + "/executors/", executors_page)
    r.add_get(prefix + "/storage/", storage_page)
    r.add_get(prefix + "/environment/", environment_page)
    r.add_get(prefix + "/logs/", logs_page)
