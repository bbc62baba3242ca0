#!/usr/bin/env python3
"""The web status page's certificates, on the controller (tasks/web.yml): a cluster CA made
once (key 0600, never regenerated while it exists) and one certificate per node signed by
it, naming the node (DNS) and its address (IP). A node's certificate is made again only
when it is missing, was not signed by this CA, names other names, or expires within 30
days. Prints one JSON line: {"changed": bool, "why": "..."}. Needs `cryptography` (a
dependency of ansible-core, so ansible_playbook_python has it).

usage: web_ca.py CA_KEY CA_CERT CLUSTER NODE_KEY NODE_CERT NAME [ADDRESS ...]
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import sys

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
NODE_DAYS = 825
RENEW_DAYS = 30


def _write(path: str, data: bytes, mode: int) -> None:
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def ensure_ca(key_path: str, cert_path: str, cluster: str) -> tuple[object, x509.Certificate, bool]:
    if os.path.exists(key_path) and os.path.exists(cert_path):
        with open(key_path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        with open(cert_path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        os.chmod(key_path, 0o600)
        return key, cert, False
    if os.path.exists(key_path) != os.path.exists(cert_path):
        sys.exit(f"{key_path} and {cert_path}: one exists without the other; restore the "
                 "missing one or remove both to make a new CA (every node gets a new certificate)")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"clusterd-web CA of {cluster}")])
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    _write(key_path, key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return key, cert, True


def _sans(name: str, addresses: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = [x509.DNSName(name)]
    for a in addresses:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(a)))
        except ValueError:
            if a != name:
                out.append(x509.DNSName(a))
    return out


def node_problem(cert_path: str, ca: x509.Certificate, sans: list[x509.GeneralName]) -> str:
    """Why the node's certificate must be made (again), or '' when it is fine."""
    if not os.path.exists(cert_path):
        return "no certificate yet"
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return "not signed by the cluster CA"
    try:
        have = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "no subject alternative names"
    if set(have) != set(sans):
        return "other names"
    if cert.not_valid_after_utc - _now() < datetime.timedelta(days=RENEW_DAYS):
        return f"expires within {RENEW_DAYS} days"
    return ""


def main(argv: list[str]) -> int:
    if len(argv) < 6:
        sys.exit(__doc__)
    ca_key_path, ca_cert_path, cluster, key_path, cert_path, name, *addresses = argv
    ca_key, ca, ca_made = ensure_ca(ca_key_path, ca_cert_path, cluster)
    sans = _sans(name, addresses)
    why = node_problem(cert_path, ca, sans) if os.path.exists(key_path) else "no key yet"
    if not why:
        print(json.dumps({"changed": False, "why": "current"}))
        return 0
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=NODE_DAYS))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                         False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write(key_path, key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    print(json.dumps({"changed": True, "why": why + ("; new CA" if ca_made else "")}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
