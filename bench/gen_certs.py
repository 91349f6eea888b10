"""Writes N self-signed P-256 certificates with their keys (PEM, one file each) for the
benchmarks. Made with `cryptography`, which the emulator's venv has.

usage: gen_certs.py OUT_DIR N DOMAIN   (names are PREFIX<i>.DOMAIN, files <i>.pem)
"""
import datetime
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

out, n, domain = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.makedirs(out)
now = datetime.datetime.now(datetime.timezone.utc)
for i in range(n):
    key = ec.generate_private_key(ec.SECP256R1())
    cn = f"h{i}.{domain}"
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    with open(os.path.join(out, f"{i:05}.pem"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
