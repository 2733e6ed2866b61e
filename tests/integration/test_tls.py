"""TLS on a live context (``spark.ssl.*``, ``asyncspark/tls.py``), with throwaway
certificates (``tests/tlscerts.py``): mutual TLS with an encrypted key, a job with every
kind of connection (task channels, shuffle fetches, a broadcast, a cached block's replica)
exact, every executor connection the driver holds encrypted, the web UI over HTTPS with
the key's password redacted; ``Context(ssl_context=...)``; executors that refuse a driver
their trust store does not vouch for. Settings and their errors:
``tests/unit/test_tls_settings.py``."""

from __future__ import annotations

import asyncio
import operator
import ssl

import aiohttp
import pytest
import pytest_asyncio

import asyncspark
from asyncspark import StorageLevel
from asyncspark.errors import ExecutorLostError

on_module_loop = pytest.mark.asyncio(loop_scope="module")


def client_context(tls_files) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(tls_files.ca)  # the certificate names 127.0.0.1
    return ctx


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def tsc(tls_files):
    from tlscerts import KEY_PASSWORD

    conf = tls_files.conf(**{
        "spark.ssl.privateKey": tls_files.key_encrypted,
        "spark.ssl.privateKeyPassword": KEY_PASSWORD,
        "spark.ssl.needClientAuth": "true",
        "asyncspark.ssl.checkHostname": "true",
        # Shuffle blocks over the block servers (not read from the other's files).
        "asyncspark.shuffle.localRead": "false",
        "spark.ui.enabled": "true", "spark.ui.port": "0"})
    async with asyncspark.Context("local[2]", app_name="tls", conf=conf) as ctx:
        yield ctx


@on_module_loop
async def test_job_over_tls_is_exact_and_every_connection_encrypted(tsc):
    for _ in range(200):  # both block servers up (the replica needs a peer)
        if len(tsc._block_master.executors) == 2:
            break
        await asyncio.sleep(0.05)
    tasks: list = []

    class Ends:
        def onTaskEnd(self, event) -> None:
            tasks.append(event)

    tsc.addSparkListener(Ends())
    squares = tsc.broadcast({i: i * i for i in range(100)})
    pairs = tsc.parallelize(range(5000), 6).map(lambda x: (x % 100, squares.value[x % 100]))
    summed = pairs.reduceByKey(operator.add, 4).persist(StorageLevel.MEMORY_ONLY_2)
    assert dict(await summed.collect()) == {k: 50 * k * k for k in range(100)}
    joined = summed.join(tsc.parallelize([(k, -k) for k in range(100)], 3))
    assert sorted(await joined.collect()) == [(k, (50 * k * k, -k)) for k in range(100)]
    backend = tsc._backend
    conns = [*backend.conns.values(), *backend.channels.values()]
    assert len(conns) == 4
    for conn in conns:
        cipher = conn.proto.transport.get_extra_info("cipher")
        assert cipher is not None
        assert cipher[1] in ("TLSv1.2", "TLSv1.3"), cipher
        assert conn.proto.transport.get_extra_info("peercert"), "mutual TLS: a client cert"
    # Shuffle blocks came from the block servers, over TLS, and a replica was stored.
    await asyncio.sleep(0.2)  # the listener bus delivers the last task ends
    assert sum(t.metrics.get("shuffleRemoteBlocksFetched", 0) for t in tasks
               if t.metrics) > 0
    assert len(tsc._block_master.locations(f"rdd_{summed.id()}_0")) == 2


@on_module_loop
async def test_web_ui_over_https_with_the_password_redacted(tsc, tls_files):
    url = tsc.uiWebUrl
    assert url.startswith("https://"), url
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/api/v1/applications/{tsc.applicationId}/environment",
                            ssl=client_context(tls_files)) as resp:
            assert resp.status == 200
            env = dict(map(tuple, (await resp.json())["sparkProperties"]))
        assert env["spark.ssl.privateKeyPassword"] == "*********(redacted)"
        assert env["spark.ssl.enabled"] == "true"
        plain = url.replace("https://", "http://")
        with pytest.raises(aiohttp.ClientError):
            async with http.get(f"{plain}/api/v1/version") as resp:
                await resp.read()


@on_module_loop
async def test_ssl_context_serves_the_drivers_ports(tls_files):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls_files.cert, tls_files.key)
    files = {k: v for k, v in tls_files.conf().items() if k != "spark.ssl.enabled"}
    async with asyncspark.Context("local[1]", conf=files, ssl_context=ctx) as sc:
        assert sc.conf.ssl_enabled
        assert sc._backend.ssl is ctx
        assert sc._broadcasts.server.ssl is ctx
        b = sc.broadcast([1, 2, 3])
        assert await sc.parallelize(range(4), 2).map(lambda x: x + sum(b.value)).collect() \
            == [6, 7, 8, 9]


def test_executors_refuse_a_driver_they_do_not_trust(tls_files):
    """The driver presents a self-signed certificate: executors (trusting the CA) never
    register, and start() fails saying so instead of hanging. (Once: its own loop.)"""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls_files.self_signed_cert, tls_files.self_signed_key)
    conf = {**tls_files.conf(), "asyncspark.executor.registrationTimeout": "1500ms"}

    async def start():
        await asyncspark.Context("local[1]", conf=conf, ssl_context=ctx).start()

    with pytest.raises(ExecutorLostError, match="did not register"):
        asyncio.run(start())
