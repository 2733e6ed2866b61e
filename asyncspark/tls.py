"""Optional TLS on every connection: the settings, the ``ssl.SSLContext``s built from
them, and how an executor receives them (its environment: paths, never key material).

Owns ``TLSConfig`` (what ``spark.ssl.*`` / ``asyncspark.ssl.*`` say, validated: the files
exist and load, the protocol and ciphers are known), ``DriverTLS`` (the contexts the
driver's listening ports use: its executor endpoint, its broadcast server and, unless
``spark.ssl.ui.enabled=false``, the web UI) and ``executor_environment`` (the
``ASYNCSPARK_SSL_*`` variables a backend puts in an executor's environment).

Spark's keystores are Java files; asyncspark reads PEM files instead, under Spark 4's PEM
names where it has them:

==============================  ======================================================
``spark.ssl.enabled``           TLS on every connection (off by default)
``spark.ssl.certChain``         PEM certificate chain this process presents
                                (Spark: ``keyStore``)
``spark.ssl.privateKey``        PEM private key of that certificate (Spark: ``keyStore``)
``spark.ssl.privateKeyPassword``  its password, if the key is encrypted (Spark: ``keyPassword``)
``spark.ssl.trustStore``        PEM bundle of the CAs peers' certificates must chain to
                                (unset: the system's CAs)
``spark.ssl.needClientAuth``    mutual TLS: servers require a client certificate
``spark.ssl.protocol``          lowest TLS version accepted: ``TLSv1.2`` (default),
                                ``TLSv1.3``
``spark.ssl.enabledAlgorithms`` TLS 1.2 cipher suites, comma-separated OpenSSL names
``spark.ssl.ui.enabled``        the web UI over HTTPS (default: ``spark.ssl.enabled``)
``asyncspark.ssl.checkHostname``  clients check the server certificate names the
                                address they dialled (off: any certificate of the
                                trusted CAs is accepted, as Spark's RPC does)
==============================  ======================================================

Every process of an application uses the same certificate and key (as every Spark node
reads the same keystore); executors on other hosts need the files at the same paths.
TLS comes first on a connection, then the shared-secret handshake runs inside it.
"""

from __future__ import annotations

import dataclasses
import os
import ssl
from collections.abc import Mapping, MutableMapping
from typing import Any

from .errors import ConfigError

__all__ = ["TLS_ENV_PREFIX", "DriverTLS", "TLSConfig", "executor_environment"]

TLS_ENV_PREFIX = "ASYNCSPARK_SSL_"
_ENV = {  # TLSConfig field -> environment variable of an executor
    "cert_chain": "ASYNCSPARK_SSL_CERT_CHAIN",
    "private_key": "ASYNCSPARK_SSL_PRIVATE_KEY",
    "key_password": "ASYNCSPARK_SSL_KEY_PASSWORD",
    "trust_store": "ASYNCSPARK_SSL_TRUST_STORE",
    "need_client_auth": "ASYNCSPARK_SSL_NEED_CLIENT_AUTH",
    "check_hostname": "ASYNCSPARK_SSL_CHECK_HOSTNAME",
    "protocol": "ASYNCSPARK_SSL_PROTOCOL",
    "ciphers": "ASYNCSPARK_SSL_CIPHERS",
}
_PROTOCOLS = {"TLS": ssl.TLSVersion.TLSv1_2, "TLSV1.2": ssl.TLSVersion.TLSv1_2,
              "TLSV1.3": ssl.TLSVersion.TLSv1_3}


@dataclasses.dataclass(frozen=True)
class TLSConfig:
    """What TLS uses (see the module docstring for the keys). Build it with
    ``from_config`` or ``from_environment``; ``check()`` loads both contexts once so a
    bad file fails with a ``ConfigError`` naming it."""

    cert_chain: str
    private_key: str
    key_password: str | None = None
    trust_store: str | None = None
    need_client_auth: bool = False
    check_hostname: bool = False
    protocol: str = "TLSv1.2"
    ciphers: str | None = None

    @classmethod
    def from_config(cls, conf: Any, *, required: bool = False) -> TLSConfig | None:
        """The settings of ``conf`` (a ``Config``); None when TLS is off (and not
        ``required``). Missing files are a ``ConfigError`` naming the key."""
        if not (conf.ssl_enabled or required):
            return None
        missing = [key for key, value in (("spark.ssl.certChain", conf.ssl_cert_chain),
                                          ("spark.ssl.privateKey", conf.ssl_private_key))
                   if not value]
        if missing:
            raise ConfigError(
                f"TLS needs {' and '.join(missing)}: every executor presents a "
                "certificate (its block server is a TLS server), so PEM files are needed "
                "even when the driver is given an ssl_context")
        tls = cls(_absolute(conf.ssl_cert_chain), _absolute(conf.ssl_private_key),
                  conf.ssl_private_key_password,
                  _absolute(conf.ssl_trust_store) if conf.ssl_trust_store else None,
                  conf.ssl_need_client_auth, conf.ssl_check_hostname, conf.ssl_protocol,
                  conf.ssl_enabled_algorithms)
        tls.check()
        return tls

    @classmethod
    def from_environment(cls, env: MutableMapping[str, str]) -> TLSConfig | None:
        """An executor's settings from its environment (``executor_environment``), None
        when TLS is off. The key password is removed from ``env``."""
        if not env.get(_ENV["cert_chain"]):
            return None
        values: dict[str, Any] = {}
        for name, var in _ENV.items():
            value = env.pop(var, None) if name == "key_password" else env.get(var)
            if value is None or value == "":
                continue
            values[name] = value == "1" if name in ("need_client_auth", "check_hostname") \
                else value
        return cls(**values)

    def environment(self) -> dict[str, str]:
        """The ``ASYNCSPARK_SSL_*`` variables carrying these settings to an executor."""
        env = {}
        for name, var in _ENV.items():
            value = getattr(self, name)
            if isinstance(value, bool):
                env[var] = "1" if value else "0"
            elif value is not None:
                env[var] = value
        return env

    # -- contexts ------------------------------------------------------------------------

    def server_context(self, *, client_auth: bool | None = None) -> ssl.SSLContext:
        """A context for a listening port; it asks clients for a certificate chaining to
        the trust store when ``need_client_auth`` (or ``client_auth``) says so."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._common(ctx)
        want = self.need_client_auth if client_auth is None else client_auth
        if want:
            ctx.verify_mode = ssl.CERT_REQUIRED
            self._load_trust(ctx)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A context for connecting: the server's certificate must chain to the trust
        store (and name the address dialled if ``check_hostname``); this process's own
        certificate is presented when the server asks for one."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = self.check_hostname
        ctx.verify_mode = ssl.CERT_REQUIRED
        self._common(ctx)
        self._load_trust(ctx)
        return ctx

    def check(self) -> None:
        """Build both contexts once: an unreadable or mismatched file, an unknown
        protocol or cipher list fails here with a ``ConfigError``."""
        self.server_context(client_auth=True)
        self.client_context()

    def _common(self, ctx: ssl.SSLContext) -> None:
        version = _PROTOCOLS.get(self.protocol.strip().upper())
        if version is None:
            raise ConfigError(f"spark.ssl.protocol: {self.protocol!r} is not accepted; "
                              "use TLSv1.2 or TLSv1.3 (older versions are insecure)")
        ctx.minimum_version = version
        if self.ciphers:
            names = ":".join(c.strip() for c in self.ciphers.split(",") if c.strip())
            try:
                ctx.set_ciphers(names)
            except ssl.SSLError as exc:
                raise ConfigError(f"spark.ssl.enabledAlgorithms: no cipher of "
                                  f"{self.ciphers!r} is available: {exc}") from None
        for path, key in ((self.cert_chain, "spark.ssl.certChain"),
                          (self.private_key, "spark.ssl.privateKey")):
            _readable(path, key)
        try:
            ctx.load_cert_chain(self.cert_chain, self.private_key,
                                password=self.key_password or None)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise ConfigError(
                f"spark.ssl.certChain {self.cert_chain!r} / spark.ssl.privateKey "
                f"{self.private_key!r}: cannot load them ({exc}); PEM files of a "
                "certificate and its key are expected (spark.ssl.privateKeyPassword if "
                "the key is encrypted)") from None

    def _load_trust(self, ctx: ssl.SSLContext) -> None:
        if self.trust_store is None:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH if ctx.protocol ==
                                   ssl.PROTOCOL_TLS_CLIENT else ssl.Purpose.CLIENT_AUTH)
            return
        _readable(self.trust_store, "spark.ssl.trustStore")
        try:
            ctx.load_verify_locations(cafile=self.trust_store)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"spark.ssl.trustStore {self.trust_store!r}: cannot load it "
                              f"as a PEM bundle of CA certificates ({exc})") from None


def _absolute(path: str) -> str:
    # Executors start in other directories (and on other hosts): give them full paths.
    return os.path.abspath(os.path.expanduser(path))


def _readable(path: str, key: str) -> None:
    if not os.path.isfile(path):
        raise ConfigError(f"{key}: {path!r} is not a file")
    if not os.access(path, os.R_OK):
        raise ConfigError(f"{key}: {path!r} is not readable")


@dataclasses.dataclass(frozen=True)
class DriverTLS:
    """The contexts of the driver's listening ports (None: plaintext)."""

    server: ssl.SSLContext | None = None  # the executor endpoint, the broadcast server
    ui: ssl.SSLContext | None = None  # the web UI and REST API

    @classmethod
    def from_config(cls, conf: Any, ssl_context: ssl.SSLContext | None = None) -> DriverTLS:
        """From ``spark.ssl.*``; ``ssl_context`` (a server-side context) replaces the
        one built from the files for the executor endpoint and the broadcast server, and
        turns TLS on. Executors (and the UI) still use the files, required then too."""
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise ConfigError(f"ssl_context must be an ssl.SSLContext, got "
                              f"{type(ssl_context).__name__}")
        if ssl_context is not None and ssl_context.protocol == ssl.PROTOCOL_TLS_CLIENT:
            raise ConfigError("ssl_context is a client context (PROTOCOL_TLS_CLIENT): the "
                              "driver's ports need a server one (ssl.PROTOCOL_TLS_SERVER "
                              "or ssl.create_default_context(ssl.Purpose.CLIENT_AUTH))")
        tls = TLSConfig.from_config(conf, required=ssl_context is not None)
        if tls is None:
            return cls()
        server = ssl_context if ssl_context is not None else tls.server_context()
        ui_on = conf.ssl_ui_enabled if conf.ssl_ui_enabled is not None else True
        # Browsers rarely hold a client certificate: the UI never asks for one (so it is
        # served from the files, also when an ssl_context is given).
        ui = tls.server_context(client_auth=False) if ui_on else None
        return cls(server, ui)


def executor_environment(conf: Any) -> dict[str, str]:
    """The ``ASYNCSPARK_SSL_*`` variables of an executor (empty when TLS is off)."""
    tls = TLSConfig.from_config(conf)
    return tls.environment() if tls is not None else {}


def env_has_tls(env: Mapping[str, str]) -> bool:
    return bool(env.get(_ENV["cert_chain"]))
