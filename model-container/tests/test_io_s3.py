import io

import numpy as np
import pytest

from ichal.io import (
    ARCHIVE_TOO_LARGE,
    PHI_PRESENT,
    UNREADABLE_ARCHIVE,
    InputLimits,
    InputRejected,
    read_s3,
    read_stack,
    read_stacks,
)
from ichal.phantoms import dataset_bytes, frame_datasets, generate_stack, write_dicom_zip

BUCKET = "studies"


@pytest.fixture(scope="module")
def stack():
    return generate_stack(41, negative=False, size=40, frames=21)


class CountingClient:
    """Wraps a boto3 S3 client and counts downloads."""

    def __init__(self, client):
        self.client = client
        self.downloads = 0

    def get_object(self, **kwargs):
        self.downloads += 1
        return self.client.get_object(**kwargs)

    def __getattr__(self, name):
        return getattr(self.client, name)


def test_dicom_files_under_a_prefix(local_aws, stack):
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for k, ds in enumerate(frame_datasets(stack, series_uid="1.2.826.0.1.3680043.10.1")):
        s3.put_object(Bucket=BUCKET, Key=f"site-a/study-1/{k:03d}.dcm", Body=dataset_bytes(ds))
    s3.put_object(Bucket=BUCKET, Key="site-a/study-1/manifest.json", Body=b"{}")
    s3.put_object(Bucket=BUCKET, Key="site-a/study-2/other.dcm", Body=b"not this study")
    read = read_stack(f"s3://{BUCKET}/site-a/study-1/", s3_client=s3)
    assert read.series_uid == "1.2.826.0.1.3680043.10.1"
    assert float(np.max(np.abs(read.hu - stack.hu))) <= 0.5 + 1e-4
    assert read.source.startswith(f"DICOM objects s3://{BUCKET}/site-a/study-1/")


def test_one_zip_object_by_key_and_by_version(local_aws, stack):
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    buffer = io.BytesIO()
    write_dicom_zip(stack, buffer)
    first = s3.put_object(Bucket=BUCKET, Key="uploads/study 1.zip", Body=buffer.getvalue())["VersionId"]
    s3.put_object(Bucket=BUCKET, Key="uploads/study 1.zip", Body=b"overwritten with junk")
    with pytest.raises(InputRejected) as caught:
        read_stacks(f"s3://{BUCKET}/uploads/study 1.zip", s3_client=s3)
    assert caught.value.code == UNREADABLE_ARCHIVE  # the latest version is junk
    read = read_s3(BUCKET, "uploads/study 1.zip", s3_client=s3, version_id=first)
    assert float(np.max(np.abs(read[0].hu - stack.hu))) <= 0.5 + 1e-4


def test_endpoint_url_builds_the_client(local_aws, stack, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    buffer = io.BytesIO()
    write_dicom_zip(stack, buffer, extra_tags={"PatientName": "Planted^S3"})
    s3.put_object(Bucket=BUCKET, Key="a/study.zip", Body=buffer.getvalue())
    with pytest.raises(InputRejected) as caught:
        read_stacks(f"s3://{BUCKET}/a/study.zip", endpoint_url=local_aws.endpoint)
    assert caught.value.code == PHI_PRESENT and "Planted" not in str(caught.value)


def test_limits_are_checked_before_downloading(local_aws, stack):
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for k, ds in enumerate(frame_datasets(stack)):
        s3.put_object(Bucket=BUCKET, Key=f"big/{k}.dcm", Body=dataset_bytes(ds))
    client = CountingClient(s3)
    for limits in (InputLimits(max_total_bytes=10_000), InputLimits(max_files=3)):
        with pytest.raises(InputRejected) as caught:
            read_stacks(f"s3://{BUCKET}/big/", s3_client=client, limits=limits)
        assert caught.value.code == ARCHIVE_TOO_LARGE
    assert client.downloads == 0


def test_empty_prefix_is_unreadable(local_aws):
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    with pytest.raises(InputRejected) as caught:
        read_stacks(f"s3://{BUCKET}/nothing-here/", s3_client=s3)
    assert caught.value.code == UNREADABLE_ARCHIVE
