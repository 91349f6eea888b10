"""The plain way to deploy: import every certificate, region after region, with boto3's
standard retries and no client-side rate limit. Benchmark comparison only.

usage: plain_import.py ENDPOINT DIR REGION...   (DIR holds N.crt and N.key)
"""
import os
import sys
import time

import boto3
from botocore.config import Config

endpoint, folder, regions = sys.argv[1], sys.argv[2], sys.argv[3:]
names = sorted({f.rsplit(".", 1)[0] for f in os.listdir(folder) if f.endswith(".crt")})
failed = 0
start = time.monotonic()
for region in regions:
    acm = boto3.client(
        "acm", region_name=region, endpoint_url=endpoint, aws_access_key_id="bench",
        aws_secret_access_key="bench", config=Config(retries={"mode": "standard", "max_attempts": 5}),
    )
    for n in names:
        try:
            acm.import_certificate(
                Certificate=open(os.path.join(folder, n + ".crt"), "rb").read(),
                PrivateKey=open(os.path.join(folder, n + ".key"), "rb").read(),
            )
        except Exception:  # noqa: BLE001 - counting failures is the point
            failed += 1
print(f"{time.monotonic() - start:.1f} {failed}")
