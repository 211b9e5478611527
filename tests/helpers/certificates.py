"""A test CA and server certificates, written the way the Key Vault VM extension (4.x) installs them on Linux.

The extension writes a versioned full-chain `.pem` and a versioned `.keyid` private key, and keeps the
stable symlinks `<vault>.<certificate>.pem` / `.keyid` on the newest version (Microsoft's "Certificate
installation on Linux"); the `.luma` metadata file is written last.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_NOW = datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class CertificateAuthority:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def write(self, path: Path) -> Path:
        path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        return path


def make_ca(name: str = "PLS test CA") -> CertificateAuthority:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW - datetime.timedelta(minutes=5))
        .not_valid_after(_NOW + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return CertificateAuthority(key, certificate)


def install_like_key_vault_extension(store: Path, ca: CertificateAuthority, names: list[str], version: str) -> int:
    """Issues a server certificate for `names` and installs it as version `version`; returns its serial."""
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names] + [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    ]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW - datetime.timedelta(minutes=5))
        .not_valid_after(_NOW + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    base = "pls-kv.saas-tls"
    stamp = f"{version}.{int(_NOW.timestamp())}"
    chain = store / f"{base}.{version}.pem.{stamp}"
    private = store / f"{base}.{version}.keyid.{stamp}"
    chain.write_bytes(
        certificate.public_bytes(serialization.Encoding.PEM) + ca.certificate.public_bytes(serialization.Encoding.PEM)
    )
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    for link, target in ((store / f"{base}.pem", chain), (store / f"{base}.keyid", private)):
        link.unlink(missing_ok=True)
        link.symlink_to(target.name)
    (store / f"{base}.luma").write_text(f'{{"version": "{version}"}}\n')
    return certificate.serial_number
