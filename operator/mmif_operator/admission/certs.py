"""The webhook's serving certificate: a private CA and a server certificate for the webhook's
Service DNS names, kept in a Secret so that a restarted operator serves the same CA the
MutatingWebhookConfiguration trusts (its `caBundle`, which the operator sets at start)."""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CA_DAYS = 3650
CERT_DAYS = 365
RENEW_BEFORE_DAYS = 30
CA_KEY, CERT_KEY, KEY_KEY = "ca.crt", "tls.crt", "tls.key"


@dataclass(frozen=True)
class ServingCert:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def to_secret_data(self) -> dict[str, str]:
        return {
            k: base64.b64encode(v).decode("ascii")
            for k, v in ((CA_KEY, self.ca_pem), (CERT_KEY, self.cert_pem), (KEY_KEY, self.key_pem))
        }

    @classmethod
    def from_secret_data(cls, data: dict[str, str] | None) -> ServingCert | None:
        try:
            return cls(*(base64.b64decode((data or {})[k]) for k in (CA_KEY, CERT_KEY, KEY_KEY)))
        except (KeyError, ValueError):
            return None


def service_names(service: str, namespace: str) -> list[str]:
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def generate(dns_names: list[str], now: datetime.datetime | None = None) -> ServingCert:
    now = now or _now()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mmif-operator webhook CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return ServingCert(
        ca_pem=ca.public_bytes(pem),
        cert_pem=cert.public_bytes(pem),
        key_pem=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


def usable(cert: ServingCert | None, dns_names: list[str], now: datetime.datetime | None = None) -> bool:
    """The stored certificate covers `dns_names` and stays valid for RENEW_BEFORE_DAYS more."""
    if cert is None:
        return False
    try:
        parsed = x509.load_pem_x509_certificate(cert.cert_pem)
        ca = x509.load_pem_x509_certificate(cert.ca_pem)
        sans = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    horizon = (now or _now()) + datetime.timedelta(days=RENEW_BEFORE_DAYS)
    return (
        set(dns_names) <= set(sans.get_values_for_type(x509.DNSName))
        and parsed.not_valid_after_utc > horizon
        and ca.not_valid_after_utc > horizon
        and parsed.issuer == ca.subject
    )
