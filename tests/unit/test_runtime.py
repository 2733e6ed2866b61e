"""The executor's settings and environment (runtime.py), the pending-request table
(pending.py) and the thread->loop call (threads.py)."""

import asyncio
import threading

import pytest

from asyncspark.conf import Config
from asyncspark.pending import PendingRequests
from asyncspark.runtime import ExecutorEnv, ExecutorSettings
from asyncspark.threads import LoopClosedError, call_on_loop

WIRE_KEYS = {"storage_memory", "offheap_dir", "heartbeat_interval", "max_frame_size",
             "shuffle_memory", "max_bytes_in_flight", "shuffle_local_read", "trace_tasks",
             "max_result_size", "max_direct_result_size", "network_timeout",
             "shuffle_connect_timeout", "auth_timeout", "max_unauthenticated", "preload"}


def test_settings_carry_the_registered_keys_and_round_trip():
    conf = Config.from_items([("spark.network.timeout", "7s"),
                              ("asyncspark.trace.tasks", "true")])
    settings = ExecutorSettings.from_config(conf, "/dev/shm/x", ["asyncspark.rdd"])
    wire = settings.to_wire()
    assert set(wire) == WIRE_KEYS
    assert wire["network_timeout"] == 7.0
    assert wire["trace_tasks"] is True
    assert wire["offheap_dir"] == "/dev/shm/x"
    assert settings.preload == ("asyncspark.rdd",)
    assert ExecutorSettings.from_wire(wire) == settings
    # msgpack turns the tuple into a list: it comes back a tuple (the settings stay
    # hashable and equal to the driver's)
    assert ExecutorSettings.from_wire({**wire, "preload": ["asyncspark.rdd"]}) == settings


def test_settings_defaults_are_the_configs():
    defaults, conf = ExecutorSettings(), Config()
    for key in WIRE_KEYS - {"offheap_dir", "preload"}:
        assert getattr(defaults, key) == getattr(conf, key), key
    assert ExecutorSettings.from_wire({"unknown": 1}) == defaults
    coerced = ExecutorSettings.from_wire({"heartbeat_interval": 2, "trace_tasks": 1})
    assert coerced.heartbeat_interval == 2.0
    assert type(coerced.heartbeat_interval) is float
    assert coerced.trace_tasks is True


def test_env_client_pool_is_installed_and_made_once():
    env = ExecutorEnv("0", "127.0.0.1", "/nonexistent")
    with pytest.raises(RuntimeError, match="no block client pool"):
        env.client_pool()
    made = []
    env.new_client_pool = lambda e: made.append(e) or object()
    assert env.client_pool() is env.client_pool()
    assert made == [env]


async def test_pending_requests_resolve_once_and_by_their_peer():
    loop = asyncio.get_running_loop()
    table = PendingRequests()
    a, b, c = loop.create_future(), loop.create_future(), loop.create_future()
    ra = table.add(a, "x")
    rb = table.add(b, "y")
    rc = table.add(c, "y")
    assert len({ra, rb, rc}) == 3
    assert not table.resolve(ra, 1, context="y")  # not the peer it was sent to
    assert table.resolve(ra, 1, context="x")
    assert not table.resolve(ra, 2)  # answered already
    assert a.result() == 1
    table.resolve_all(0, lambda ctx: ctx == "y")
    assert (b.result(), c.result(), len(table)) == (0, 0, 0)
    d = loop.create_future()
    rd = table.add(d)
    table.discard_future(d)
    assert rd not in table


def test_call_on_loop_waits_cancels_and_translates():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    try:
        async def answer():
            return 42

        assert call_on_loop(loop, answer()) == 42
        started = threading.Event()
        cancelled = threading.Event()

        async def hang():
            started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        with pytest.raises(TimeoutError, match="no answer in time"):
            call_on_loop(loop, hang(), 0.2, "no answer in time")
        assert started.is_set()
        assert cancelled.wait(5)

        async def fail():
            raise KeyError("x")

        with pytest.raises(KeyError):
            call_on_loop(loop, fail())
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    async def never():
        pass

    with pytest.raises(LoopClosedError):
        call_on_loop(loop, never())
