"""A self-signed certificate for first start, made with ``cryptography``."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _local_names() -> tuple[list[str], list[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    names = {"localhost"}
    ips: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    host = socket.gethostname()
    names.update({host, socket.getfqdn()})
    try:
        for info in socket.getaddrinfo(host, None):
            ips.add(ipaddress.ip_address(info[4][0]))
    except OSError:
        pass  # a machine whose own name does not resolve still gets localhost
    return sorted(n for n in names if n), sorted(ips, key=str)


def ensure_self_signed(data_dir: Path) -> tuple[Path, Path]:
    """Return (cert, key) in ``data_dir``, making them on first use (valid 825 days)."""
    cert_path, key_path = data_dir / "tls" / "cert.pem", data_dir / "tls" / "key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    names, ips = _local_names()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Salon (self-signed)")])
    now = dt.datetime.now(dt.UTC)
    alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ip) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
