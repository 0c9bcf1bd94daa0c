"""S3 URIs and clients, with an endpoint override for the local emulator."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlparse

S3_ENDPOINT_ENV = "ICHAL_S3_ENDPOINT"


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"not an s3:// URI: {uri!r}")
        return cls(bucket=parsed.netloc, key=parsed.path.lstrip("/"))

    def child(self, name: str) -> S3Location:
        prefix = self.key if not self.key or self.key.endswith("/") else self.key + "/"
        return S3Location(self.bucket, prefix + name)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def s3_client(endpoint_url: str | None = None):
    """A boto3 S3 client; ``endpoint_url`` (or $ICHAL_S3_ENDPOINT) points it at a local emulator."""
    import boto3
    from botocore.config import Config

    endpoint = endpoint_url or os.environ.get(S3_ENDPOINT_ENV) or None
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        config=Config(
            s3={"addressing_style": "path"} if endpoint else {},
            retries={"max_attempts": 5, "mode": "standard"},
        ),
    )


def sns_client(endpoint_url: str | None = None, region: str = "us-east-1"):
    """A boto3 SNS client; ``endpoint_url`` points it at a local emulator."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sns",
        endpoint_url=endpoint_url or None,
        region_name=region,
        config=Config(retries={"max_attempts": 5, "mode": "standard"}),
    )
