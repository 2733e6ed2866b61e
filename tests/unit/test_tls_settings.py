"""TLS settings (``asyncspark/tls.py``) with throwaway files (``tests/tlscerts.py``):
bad settings refused with an error naming them when the Context is made (nothing
started), what an executor's environment carries (paths; the key password taken out
of it on arrival), and TLS off changing nothing. Live TLS: ``tests/integration/test_tls.py``,
``tests/hostile/test_tls_peers.py``."""

from __future__ import annotations

import ssl

import pytest

import asyncspark
from asyncspark.conf import Config
from asyncspark.errors import ConfigError
from asyncspark.tls import DriverTLS, TLSConfig, executor_environment


@pytest.mark.parametrize(("change", "message"), [
    ({"spark.ssl.certChain": None}, "TLS needs spark.ssl.certChain"),
    ({"spark.ssl.privateKey": "/nonexistent/key.pem"}, "spark.ssl.privateKey: '/nonexistent"),
    ({"spark.ssl.privateKeyPassword": "wrong"}, "cannot load them"),
    ({"spark.ssl.protocol": "TLSv1"}, "spark.ssl.protocol: 'TLSv1' is not accepted"),
    ({"spark.ssl.enabledAlgorithms": "NO-SUCH-CIPHER"}, "spark.ssl.enabledAlgorithms"),
    ({"spark.ssl.trustStore": "KEY"}, "spark.ssl.trustStore"),
    ({"spark.ssl.certChain": "CA"}, "cannot load them"),  # the key does not match
])
def test_bad_settings_fail_with_an_error_naming_them(tls_files, change, message):
    conf = tls_files.conf(**{"spark.ssl.privateKey": tls_files.key_encrypted,
                             "spark.ssl.privateKeyPassword": "hunter2-test-only"})
    for key, value in change.items():
        value = {"KEY": tls_files.key, "CA": tls_files.ca}.get(value, value)
        if value is None:
            conf.pop(key)
        else:
            conf[key] = value
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        asyncspark.Context("local[1]", conf=conf)


def test_bad_ssl_context_arguments(tls_files):
    with pytest.raises(ConfigError, match=r"must be an ssl\.SSLContext"):
        asyncspark.Context("local[1]", ssl_context="yes please")
    with pytest.raises(ConfigError, match="client context"):
        asyncspark.Context("local[1]", ssl_context=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    with pytest.raises(ConfigError, match=r"TLS needs spark\.ssl\.certChain and "
                                          r"spark\.ssl\.privateKey"):
        asyncspark.Context("local[1]", ssl_context=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))


def test_executor_environment_carries_paths_and_the_password_only_there(tls_files):
    conf = Config.from_items(tls_files.conf(**{
        "spark.ssl.privateKey": tls_files.key_encrypted,
        "spark.ssl.privateKeyPassword": "hunter2-test-only",
        "spark.ssl.needClientAuth": "true"}).items())
    env = executor_environment(conf)
    assert env["ASYNCSPARK_SSL_CERT_CHAIN"] == tls_files.cert
    assert env["ASYNCSPARK_SSL_NEED_CLIENT_AUTH"] == "1"
    assert all("BEGIN" not in v for v in env.values())  # paths, never key material
    child = dict(env)
    tls = TLSConfig.from_environment(child)
    assert "ASYNCSPARK_SSL_KEY_PASSWORD" not in child  # taken out of the environment
    assert tls == TLSConfig.from_config(conf)
    tls.check()  # the executor's contexts build from it


def test_tls_off_changes_nothing():
    conf = Config.from_items([])
    assert executor_environment(conf) == {}
    assert DriverTLS.from_config(conf) == DriverTLS(None, None)
    assert TLSConfig.from_environment({"PATH": "/bin"}) is None


def test_tls_is_for_tcp_block_servers_only(tls_files):
    from asyncspark.transport.server import TransportServer

    ctx = TLSConfig(tls_files.cert, tls_files.key).server_context()
    for where in ({"path": "/tmp/x.sock"}, {"in_memory": True}):
        with pytest.raises(ValueError, match="TLS"):
            TransportServer("s", lambda *a: None, ssl=ctx, **where)


def test_ui_never_asks_browsers_for_a_certificate(tls_files):
    conf = Config.from_items(tls_files.conf(**{"spark.ssl.needClientAuth": "true"}).items())
    tls = DriverTLS.from_config(conf)
    assert tls.server.verify_mode == ssl.CERT_REQUIRED
    assert tls.ui.verify_mode == ssl.CERT_NONE
    off = Config.from_items([*tls_files.conf().items(), ("spark.ssl.ui.enabled", "false")])
    assert DriverTLS.from_config(off).ui is None
