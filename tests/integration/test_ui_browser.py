"""A real browser: headless Chromium (Debian's ``chromium``; ``.ci/run`` installs it)
loads the web UI while a job runs, over the DevTools protocol (aiohttp's WebSocket
client, no selenium): the job appears as active, then, with no reload (the page follows
the server-sent events), as succeeded; screenshots of the jobs page and of the running
stage's page are saved as test artifacts (``$ASYNCSPARK_TEST_ARTIFACTS``, default
``build/test-artifacts/``)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import pathlib
import re
import shutil
import signal
import tempfile
import time

import aiohttp
import pytest

import asyncspark

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = pathlib.Path(os.environ.get(
    "ASYNCSPARK_TEST_ARTIFACTS",
    pathlib.Path(__file__).resolve().parents[2] / "build" / "test-artifacts"))

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary (Debian: apt-get install -y chromium; "
                             ".ci/run installs it)")


class Page:
    """One browser tab driven over the DevTools protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, **params):
        msg_id = next(self.ids)
        await self.ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads((await asyncio.wait_for(self.ws.receive(), 30)).data)
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    async def text(self) -> str:
        r = await self.call("Runtime.evaluate", expression="document.body.innerText",
                            returnByValue=True)
        return r["result"].get("value") or ""

    async def wait_text(self, needle: str, limit: float = 30.0) -> str:
        deadline = time.monotonic() + limit
        while True:
            text = await self.text()
            if needle in text:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not on the page; it shows:\n{text}")
            await asyncio.sleep(0.1)

    async def screenshot(self, name: str) -> pathlib.Path:
        r = await self.call("Page.captureScreenshot", format="png")
        path = ARTIFACTS / name
        await asyncio.to_thread(_save, path, base64.b64decode(r["data"]))
        return path


def _save(path: pathlib.Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def start_chromium(profile: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--remote-debugging-port=0", f"--user-data-dir={profile}",
        "--window-size=1280,900", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        start_new_session=True)  # its own process group: stopped as one below
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = await asyncio.wait_for(proc.stderr.readline(), 60)
        if not line:
            break
        m = re.search(rb"DevTools listening on (ws://\S+)", line)
        if m:
            # keep draining its stderr so that it never blocks on a full pipe
            _DRAINS.add(asyncio.ensure_future(_drain(proc.stderr)))
            return proc, m.group(1).decode()
    raise AssertionError("chromium did not start its DevTools server")


_DRAINS: set = set()


async def _drain(stream) -> None:
    while await stream.readline():
        pass


def slow_task(x):
    time.sleep(1.5)
    return x


async def test_browser_sees_a_job_run_then_succeed():
    profile = tempfile.mkdtemp(prefix="asyncspark-chromium-")
    proc = job = None
    conf = {"spark.ui.enabled": "true", "spark.ui.port": "0"}
    try:
        async with asyncspark.Context("local[2]", app_name="browser-test", conf=conf) as sc:
            proc, browser_ws = await start_chromium(profile)
            port = re.search(r":(\d+)/", browser_ws).group(1)
            async with aiohttp.ClientSession() as http:
                async with http.put(f"http://127.0.0.1:{port}/json/new?about:blank") as r:
                    target = await r.json()
                async with http.ws_connect(target["webSocketDebuggerUrl"],
                                           max_msg_size=0) as ws:
                    page = Page(ws)
                    await page.call("Page.enable")
                    await page.call("Runtime.enable")
                    pairs = sc.parallelize(range(8), 4).map(slow_task).map(lambda x: (x % 2, x))
                    job = asyncio.ensure_future(pairs.reduceByKey(lambda a, b: a + b).collect())
                    await page.call("Page.navigate", url=f"{sc.uiWebUrl}/jobs/")
                    text = await page.wait_text("Active Jobs (1)")
                    assert "\tcollect\t" in text  # the job's name (its action)
                    await page.screenshot("ui-jobs-running.png")
                    await page.call("Page.navigate",
                                    url=f"{sc.uiWebUrl}/stages/stage/?id=0&attempt=0")
                    await page.wait_text("Tasks")
                    await page.screenshot("ui-stage-running.png")
                    await page.call("Page.navigate", url=f"{sc.uiWebUrl}/jobs/")
                    await page.wait_text("Active Jobs (1)")
                    # no navigation from here: the page follows the event stream
                    assert sorted(await asyncio.wait_for(job, 60)) == [(0, 12), (1, 16)]
                    text = await page.wait_text("Completed Jobs (1)")
                    assert "Active Jobs (0)" in text
                    assert "SUCCEEDED" in text
                    shot = await page.screenshot("ui-jobs-succeeded.png")
                    assert shot.stat().st_size > 10_000
                    await page.call("Page.navigate",
                                    url=f"{sc.uiWebUrl}/stages/stage/?id=0&attempt=0")
                    await page.wait_text("Summary Metrics for 4 Completed Tasks")
                    await page.screenshot("ui-stage.png")
    finally:
        if job is not None and not job.done():
            job.cancel()
        if proc is not None and proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
