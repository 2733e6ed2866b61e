"""Throwaway certificates for the TLS tests (the ``tls_files`` fixture of conftest.py),
made with the ``cryptography`` package: a CA, a certificate it signs for 127.0.0.1 /
localhost (server and client use, as every asyncspark process presents one), an
encrypted copy of its key, and two certificates the CA does not vouch for (a self-signed
one and one of another CA)."""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_PASSWORD = "hunter2-test-only"


@dataclasses.dataclass(frozen=True)
class TLSFiles:
    ca: str  # the trust store: PEM of the CA
    cert: str  # signed by ca, SAN 127.0.0.1 and localhost
    key: str
    key_encrypted: str  # key, encrypted with KEY_PASSWORD
    self_signed_cert: str  # not from ca
    self_signed_key: str
    other_ca: str  # another CA, and a certificate it signs
    other_cert: str
    other_key: str

    def conf(self, **extra: str) -> dict[str, str]:
        """The spark.ssl.* settings turning TLS on with these files."""
        return {"spark.ssl.enabled": "true", "spark.ssl.certChain": self.cert,
                "spark.ssl.privateKey": self.key, "spark.ssl.trustStore": self.ca, **extra}


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key, issuer: str, issuer_key, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False).add_extension(x509.ExtendedKeyUsage([
                ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(directory: str, name: str, data: bytes) -> str:
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)
    return path


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key, password: str | None = None) -> bytes:
    enc = (serialization.BestAvailableEncryption(password.encode()) if password
           else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8, enc)


def make_tls_files(directory: str) -> TLSFiles:
    new_key = lambda: ec.generate_private_key(ec.SECP256R1())  # noqa: E731
    ca_key, key, other_ca_key, other_key, self_key = (new_key() for _ in range(5))
    ca = _cert("asyncspark test CA", ca_key, "asyncspark test CA", ca_key, ca=True)
    cert = _cert("asyncspark test node", key, "asyncspark test CA", ca_key, ca=False)
    other_ca = _cert("some other CA", other_ca_key, "some other CA", other_ca_key, ca=True)
    other = _cert("asyncspark test node", other_key, "some other CA", other_ca_key, ca=False)
    self_signed = _cert("asyncspark test node", self_key, "asyncspark test node", self_key,
                        ca=False)
    w = lambda name, data: _write(directory, name, data)  # noqa: E731
    return TLSFiles(
        ca=w("ca.pem", _pem(ca)), cert=w("node.pem", _pem(cert)), key=w("node.key", _key_pem(key)),
        key_encrypted=w("node-encrypted.key", _key_pem(key, KEY_PASSWORD)),
        self_signed_cert=w("self.pem", _pem(self_signed)),
        self_signed_key=w("self.key", _key_pem(self_key)),
        other_ca=w("other-ca.pem", _pem(other_ca)), other_cert=w("other.pem", _pem(other)),
        other_key=w("other.key", _key_pem(other_key)))
