"""Seeds the ACM emulator with N imported certificates spread over regions (benchmark use).

usage: seed_acm.py ENDPOINT N REGION...
Certificates are made with `cryptography` (a moto dependency), P-256, one per import.
"""
import datetime
import sys

import boto3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make(cn, days):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem_cert = cert.public_bytes(serialization.Encoding.PEM)
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem_cert, pem_key


def main():
    endpoint, n, regions = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    clients = {
        r: boto3.client(
            "acm", region_name=r, endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench"
        )
        for r in regions
    }
    for i in range(n):
        region = regions[i % len(regions)]
        cert, key = make(f"host-{i}.bench.example", 30 + (i * 7) % 365)
        clients[region].import_certificate(Certificate=cert, PrivateKey=key)
    print(f"seeded {n} certificates over {len(regions)} regions", file=sys.stderr)


if __name__ == "__main__":
    main()
