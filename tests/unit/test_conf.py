"""Configuration parsing and validation."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncspark.conf import KNOWN_KEYS, Config, SparkConf, parse_bytes, parse_duration
from asyncspark.errors import ConfigError


@pytest.mark.parametrize(("text", "expected"), [
    ("0", 0),
    ("17", 17),
    (17, 17),
    ("512b", 512),
    ("512k", 512 << 10),
    ("512KB", 512 << 10),
    ("48m", 48 << 20),
    ("48mb", 48 << 20),
    (" 1g ", 1 << 30),
    ("1 G", 1 << 30),
    ("2t", 2 << 40),
    ("1p", 1 << 50),
])
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", [
    "", "m", "-1", "1.5g", "12x", "1 g b", "1e6", True, None, 1.0, -5, "٣m",
])
def test_parse_bytes_rejects(text):
    with pytest.raises(ConfigError, match=r"^my\.key: "):
        parse_bytes(text, "my.key")


@pytest.mark.parametrize(("text", "expected"), [
    ("3s", 3.0),
    ("3", 3.0),
    (3, 3.0),
    (0.25, 0.25),
    ("100ms", 0.1),
    ("250us", 250e-6),
    ("1.5s", 1.5),
    ("2m", 120.0),
    ("2min", 120.0),
    ("1h", 3600.0),
    ("1d", 86400.0),
    (" 10 S ", 10.0),
    ("0", 0.0),
])
def test_parse_duration(text, expected):
    assert parse_duration(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", [
    "", "s", "-1s", "3 seconds", "3w", ".5s", "1e3", True, None, "٣s",
    float("nan"), float("inf"), -0.5, "nan", "inf",
])
def test_parse_duration_rejects(text):
    with pytest.raises(ConfigError, match=r"^my\.key: "):
        parse_duration(text, "my.key")


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 1 << 40), unit=st.sampled_from(["", "b", "k", "m", "g", "K", "MB"]))
def test_parse_bytes_scales(n, unit):
    factor = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "mb": 1 << 20}
    assert parse_bytes(f"{n}{unit}") == n * factor[unit.lower()]


# -- Config --------------------------------------------------------------------------

def test_defaults_match_the_key_table():
    conf = Config.from_items([])
    for key, (field, _parser, default, doc) in KNOWN_KEYS.items():
        assert getattr(conf, field) == default, key
        assert doc
    fields = {f.name for f in dataclasses.fields(Config)} - {"raw"}
    assert fields == {spec[0] for spec in KNOWN_KEYS.values()}


def test_spark_defaults():
    conf = Config()
    assert conf.task_max_failures == 4
    assert conf.max_frame_size == 256 << 20


def test_from_items_parses_and_keeps_raw():
    conf = Config.from_items([
        ("spark.task.maxFailures", "7"),
        ("spark.executor.heartbeatInterval", "500ms"),
        ("asyncspark.rpc.maxFrameSize", "16m"),
        ("spark.python.worker.reuse", "false"),
        ("spark.default.parallelism", 8),
        ("spark.some.otherKey", "whatever"),
    ])
    assert conf.task_max_failures == 7
    assert conf.heartbeat_interval == 0.5
    assert conf.max_frame_size == 16 << 20
    assert conf.worker_reuse is False
    assert conf.default_parallelism == 8
    assert conf.raw["spark.some.otherKey"] == "whatever"
    assert conf.raw["spark.default.parallelism"] == "8"
    with pytest.raises(dataclasses.FrozenInstanceError):
        conf.task_max_failures = 1  # type: ignore[misc]


@pytest.mark.parametrize(("key", "value"), [
    ("spark.task.maxFailures", "many"),
    ("spark.task.maxFailures", "0"),
    ("spark.task.maxFailures", "-1"),
    ("spark.task.maxFailures", 2.5),
    ("spark.task.maxFailures", True),
    ("spark.task.maxFailures", float("inf")),
    ("spark.task.maxFailures", None),
    ("asyncspark.executor.taskSlots", "0"),
    ("asyncspark.rpc.maxFrameSize", "512"),
    ("asyncspark.rpc.maxFrameSize", "4g"),
    ("asyncspark.rpc.maxFrameSize", "lots"),
    ("spark.executor.heartbeatInterval", "0s"),
    ("spark.executor.heartbeatInterval", "nan"),
    ("spark.executor.heartbeatInterval", float("nan")),
    ("asyncspark.executor.registrationTimeout", "0"),
    ("asyncspark.task.killGracePeriod", "-1s"),
    ("spark.python.worker.reuse", "maybe"),
    ("spark.default.parallelism", "0"),
    ("asyncspark.executor.maxReplacementsPerMinute", "-3"),
])
def test_invalid_values_name_the_key(key, value):
    with pytest.raises(ConfigError) as info:
        Config.from_items([(key, value)])
    assert key in str(info.value)


def test_integral_float_is_an_integer():
    assert Config.from_items([("spark.task.maxFailures", 3.0)]).task_max_failures == 3


def test_largest_frame_size():
    conf = Config.from_items([("asyncspark.rpc.maxFrameSize", (1 << 32) - 1)])
    assert conf.max_frame_size == (1 << 32) - 1


def test_unknown_asyncspark_keys_are_rejected():
    with pytest.raises(ConfigError, match=r"asyncspark\.rpc\.maxFramSize"):
        Config.from_items([("asyncspark.rpc.maxFramSize", "1m")])


def test_unknown_spark_keys_are_kept():
    conf = Config.from_items([("spark.sql.shuffle.partitions", "10"), ("other", "x")])
    assert conf.raw == {"spark.sql.shuffle.partitions": "10", "other": "x"}


@pytest.mark.parametrize(("value", "expected"), [
    ("true", True), ("TRUE", True), ("1", True), ("yes", True), (True, True),
    ("false", False), ("False", False), ("0", False), ("no", False), (False, False),
])
def test_booleans(value, expected):
    assert Config.from_items([("asyncspark.eventLoop.uvloop", value)]).use_uvloop is expected


# -- SparkConf -----------------------------------------------------------------------

def test_spark_conf_api(monkeypatch):
    monkeypatch.setenv("ASYNCSPARK_CONF_spark__task__maxFailures", "9")
    conf = SparkConf().setMaster("local[3]").setAppName("app").set("a.b", 1)
    assert conf.get("spark.task.maxFailures") == "9"
    assert conf.get("spark.master") == "local[3]"
    assert conf.get("a.b") == "1"
    assert conf.get("missing", "dflt") == "dflt"
    assert conf.contains("spark.app.name")
    conf.setIfMissing("spark.app.name", "other").setAll([("x", 2), ("y", "3")])
    assert conf.get("spark.app.name") == "app"
    assert ("x", "2") in conf.getAll()
    assert "spark.master=local[3]" in conf.toDebugString().splitlines()
    assert SparkConf(loadDefaults=False).getAll() == []
    parsed = Config.from_items(conf.getAll())
    assert parsed.task_max_failures == 9
    assert parsed.app_name == "app"


# -- issue 11, item 8 ------------------------------------------------------------------


def test_heartbeat_timeout_must_exceed_the_interval():
    with pytest.raises(ConfigError, match=r"asyncspark.executor.heartbeatTimeout \(0.5s\) "
                                          r"must be greater than spark.executor."
                                          r"heartbeatInterval \(1s\)"):
        Config.from_items([("asyncspark.executor.heartbeatTimeout", "500ms")])
    with pytest.raises(ConfigError, match="heartbeatInterval"):
        Config.from_items([("spark.executor.heartbeatInterval", "10s")])
    conf = Config.from_items([("spark.executor.heartbeatInterval", "10s"),
                              ("asyncspark.executor.heartbeatTimeout", "30s")])
    assert (conf.heartbeat_interval, conf.heartbeat_timeout) == (10.0, 30.0)


@pytest.mark.parametrize(("key", "text", "field", "expected"), [
    # Spark's default unit of each key (core/.../internal/config/package.scala)
    ("spark.locality.wait", "3000", "locality_wait", 3.0),  # ms
    ("spark.executor.heartbeatInterval", "500", "heartbeat_interval", 0.5),  # ms
    ("spark.speculation.interval", "100", "speculation_interval", 0.1),  # ms
    ("spark.speculation.minTaskRuntime", "250", "speculation_min_runtime", 0.25),  # ms
    ("spark.network.timeout", "120", "network_timeout", 120.0),  # s
    ("spark.reducer.maxSizeInFlight", "48", "max_bytes_in_flight", 48 << 20),  # MiB
    ("spark.driver.maxResultSize", "1048576", "max_result_size", 1 << 20),  # bytes
    # asyncspark's own keys: seconds and bytes
    ("asyncspark.shuffle.connectTimeout", "30", "shuffle_connect_timeout", 30.0),
    ("asyncspark.network.authTimeout", "2", "auth_timeout", 2.0),
    ("asyncspark.rpc.maxFrameSize", "65536", "max_frame_size", 65536),
    # an explicit unit always wins
    ("spark.locality.wait", "2s", "locality_wait", 2.0),
    ("spark.reducer.maxSizeInFlight", "4k", "max_bytes_in_flight", 4096),
])
def test_numbers_without_a_unit_take_the_keys_default_unit(key, text, field, expected):
    conf = Config.from_items([(key, text)])
    assert getattr(conf, field) == pytest.approx(expected)


def test_local_n_f_sets_task_max_failures():
    from asyncspark.context import Context

    assert Context("local[2,3]").conf.task_max_failures == 3
    assert Context("local[*, 1]").conf.task_max_failures == 1
    assert Context("local[2]").conf.task_max_failures == 4
    with pytest.raises(ConfigError, match="task failures must be at least 1"):
        Context("local[2,0]")


@pytest.mark.parametrize("host", ["", "not a host", "bad_host!", "-x.example", "a..b"])
def test_unparsable_rpc_host_is_a_config_error(host):
    with pytest.raises(ConfigError, match=r"asyncspark\.rpc\.host"):
        Config.from_items([("asyncspark.rpc.host", host)])


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "node-1.example.org"])
def test_rpc_host_accepts_addresses_and_names(host):
    assert Config.from_items([("asyncspark.rpc.host", host)]).rpc_host == host


async def test_rpc_host_that_does_not_resolve_is_a_config_error():
    import asyncspark

    sc = asyncspark.Context("local[1]", conf={"asyncspark.rpc.host": "no-such-host.invalid"})
    with pytest.raises(ConfigError, match=r"asyncspark\.rpc\.host: cannot listen on"):
        await sc.start()


def test_unknown_spark_keys_warn_once_each(caplog):
    caplog.set_level(logging.WARNING, logger="asyncspark")
    conf = Config.from_items([("spark.executor.extraJavaOptions", "-Xss4m"),
                              ("spark.foo.bar", "1"), ("spark.locality.wait", "0")])
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2, warnings
    assert "'spark.executor.extraJavaOptions'" in warnings[0]
    assert "'spark.foo.bar'" in warnings[1]
    assert conf.raw["spark.executor.extraJavaOptions"] == "-Xss4m"
