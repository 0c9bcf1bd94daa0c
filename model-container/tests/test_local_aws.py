"""The local AWS harness: moto server answers the real boto3 clients and resets between tests."""

import json
from urllib.parse import unquote_plus

import pytest
from botocore.exceptions import ClientError


def test_s3_round_trip(local_aws):
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket="studies")
    s3.put_object(Bucket="studies", Key="uploads/a b.zip", Body=b"PK\x03\x04")
    assert s3.get_object(Bucket="studies", Key="uploads/a b.zip")["Body"].read() == b"PK\x03\x04"


def test_state_is_reset_between_tests(local_aws):
    s3 = local_aws.client("s3")
    assert s3.list_buckets()["Buckets"] == []


def test_s3_notification_reaches_sqs_with_url_encoded_key(local_aws):
    """S3 → SQS notifications carry the standard event JSON (keys URL-encoded, as on AWS)."""
    s3 = local_aws.client("s3")
    sqs = local_aws.client("sqs")
    queue_url = sqs.create_queue(QueueName="ingest")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.create_bucket(Bucket="studies")
    s3.put_bucket_notification_configuration(
        Bucket="studies",
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}},
                }
            ]
        },
    )
    s3.put_object(Bucket="studies", Key="uploads/study 1+2.zip", Body=b"x")
    keys = []
    for _ in range(5):
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            body = json.loads(message["Body"])
            keys += [record["s3"]["object"]["key"] for record in body.get("Records", [])]
        if keys:
            break
    # Space → '+', '+' → %2B. (moto also encodes '/' as %2F, which AWS leaves as is; decoding
    # with unquote_plus / decodeURIComponent after '+' → ' ' handles both.)
    assert len(keys) == 1
    assert "+1%2B2" in keys[0]
    assert unquote_plus(keys[0]) == "uploads/study 1+2.zip"


def test_reset_rejects_nothing_else(moto_server):
    """The fixture's server stays up across tests and answers a reset directly."""
    moto_server.reset()
    with pytest.raises(ClientError):
        moto_server.client("s3").head_bucket(Bucket="studies")
