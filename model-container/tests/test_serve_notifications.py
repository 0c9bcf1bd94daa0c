"""Asynchronous-inference notifications: after the result (or the failure) is written, the server
publishes SageMaker's success / error notification JSON to the configured SNS topics, as the platform
does for an endpoint config with a NotificationConfig. Checked end to end on moto server: SNS topics
subscribed by an SQS queue, as the stack wires them (raw message delivery off: SNS envelopes)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest

from ichal.request_error import RequestError
from ichal.serve.s3_location import S3Location
from ichal.serve.server import AsyncNotifier, ScoringService, make_server


def fake_scorer(request):
    if request.get("input") == "s3://studies/phi.zip":
        raise RequestError(422, "PHI_PRESENT", "the study carries identifying attributes: PatientName")
    if request.get("input") == "boom":
        raise RuntimeError("simulated fault")
    return {"stacks": [{"input": request.get("input")}]}


@pytest.fixture
def wired(local_aws):
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket="studies")
    sns = local_aws.client("sns")
    sqs = local_aws.client("sqs")
    success = sns.create_topic(Name="success")["TopicArn"]
    error = sns.create_topic(Name="error")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="scores")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    for topic in (success, error):
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    service = ScoringService(
        scorer=fake_scorer,
        s3=s3,
        async_output=S3Location("studies", "scoring-results/"),
        notifier=AsyncNotifier(sns=sns, success_topic=success, error_topic=error, region="us-east-1"),
    )
    httpd = make_server(service, host="127.0.0.1", port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield {
        "url": f"http://127.0.0.1:{httpd.server_address[1]}",
        "s3": s3,
        "sqs": sqs,
        "queue": queue_url,
        "success": success,
        "error": error,
    }
    httpd.shutdown()
    httpd.server_close()


def invoke_async(wired, request_key: str, study: str) -> dict:
    wired["s3"].put_object(Bucket="studies", Key=request_key, Body=json.dumps({"input": study}).encode())
    request = urllib.request.Request(
        f"{wired['url']}/endpoints/ich-al-scoring/async-invocations",
        data=b"",
        method="POST",
        headers={"X-Amzn-SageMaker-InputLocation": f"s3://studies/{request_key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
        return json.loads(response.read())


def next_envelope(wired, timeout: float = 10.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        messages = (
            wired["sqs"]
            .receive_message(QueueUrl=wired["queue"], MaxNumberOfMessages=1, WaitTimeSeconds=1)
            .get("Messages", [])
        )
        if messages:
            wired["sqs"].delete_message(QueueUrl=wired["queue"], ReceiptHandle=messages[0]["ReceiptHandle"])
            return json.loads(messages[0]["Body"])
    raise AssertionError("no notification arrived")


def test_completed_invocation_is_announced_on_the_success_topic(wired):
    accepted = invoke_async(wired, "scoring-requests/a.json", "s3://studies/ok.zip")
    envelope = next_envelope(wired)
    assert envelope["Type"] == "Notification" and envelope["TopicArn"] == wired["success"]
    notification = json.loads(envelope["Message"])
    assert notification["invocationStatus"] == "Completed"
    assert notification["inferenceId"] == accepted["InferenceId"]
    assert notification["requestParameters"] == {
        "contentType": "application/json",
        "endpointName": "ich-al-scoring",
        "inputLocation": "s3://studies/scoring-requests/a.json",
    }
    assert notification["responseParameters"]["outputLocation"] == accepted["OutputLocation"]
    assert notification["eventSource"] == "aws:sagemaker" and notification["eventName"] == "InferenceResult"
    assert "failureReason" not in notification
    # The result is in S3 before it is announced.
    out = S3Location.parse(accepted["OutputLocation"])
    assert json.loads(wired["s3"].get_object(Bucket=out.bucket, Key=out.key)["Body"].read())["stacks"]


@pytest.mark.parametrize(("study", "status"), [("s3://studies/phi.zip", 422), ("boom", 500)])
def test_failed_invocation_is_announced_on_the_error_topic(wired, study, status):
    accepted = invoke_async(wired, "scoring-requests/b.json", study)
    envelope = next_envelope(wired)
    assert envelope["TopicArn"] == wired["error"]
    notification = json.loads(envelope["Message"])
    assert notification["invocationStatus"] == "Failed"
    assert notification["inferenceId"] == accepted["InferenceId"]
    assert notification["responseParameters"]["failureLocation"] == accepted["FailureLocation"]
    kind = "client" if status < 500 else "server"
    assert notification["failureReason"].startswith(
        f"ClientError: Received {kind} error ({status}) from model."
    )
    failure = S3Location.parse(accepted["FailureLocation"])
    body = json.loads(wired["s3"].get_object(Bucket=failure.bucket, Key=failure.key)["Body"].read())
    assert body["status"] == status


def test_without_a_topic_for_an_outcome_nothing_is_published(local_aws):
    sns_calls = []

    class RecordingSns:
        def publish(self, **kwargs):
            sns_calls.append(kwargs)

    notifier = AsyncNotifier(
        sns=RecordingSns(), success_topic="arn:aws:sns:us-east-1:123456789012:ok", error_topic=None
    )
    notifier.publish({"invocationStatus": "Failed"})
    notifier.publish({"invocationStatus": "Completed"})
    assert [c["TopicArn"] for c in sns_calls] == ["arn:aws:sns:us-east-1:123456789012:ok"]
