"""The SageMaker HTTP contract over real sockets, with a stand-in scorer (the real one is tested in
test_scoring.py): routes, status codes, asynchronous invocations through S3 on moto server."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from ichal.request_error import RequestError
from ichal.serve.s3_location import S3Location
from ichal.serve.server import ScoringService, make_server


def fake_scorer(request):
    if request.get("input") == "s3://studies/phi.zip":
        raise RequestError(422, "PHI_PRESENT", "the study carries identifying attributes: PatientName")
    if request.get("input") == "boom":
        raise RuntimeError("simulated fault")
    return {"stacks": [{"stack_uncertainty": 0.25, "input": request.get("input")}]}


@pytest.fixture
def server(local_aws):
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket="studies")
    service = ScoringService(scorer=fake_scorer, s3=s3, async_output=S3Location("studies", "scores/"))
    httpd = make_server(service, host="127.0.0.1", port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", service, s3
    httpd.shutdown()
    httpd.server_close()


def call(url, method="GET", body=None, headers=None):
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def test_ping_and_invocations(server):
    url, _, _ = server
    assert call(f"{url}/ping")[:2] == (200, {"status": "healthy"})
    status, body, _ = call(f"{url}/invocations", "POST", {"input": "s3://studies/a.zip"})
    assert status == 200 and body["stacks"][0]["stack_uncertainty"] == 0.25
    status, body, _ = call(
        f"{url}/endpoints/ich-scoring/invocations", "POST", {"input": "s3://studies/b.zip"}
    )
    assert status == 200 and body["stacks"][0]["input"] == "s3://studies/b.zip"


@pytest.mark.parametrize(
    "path,body,status,code",
    [
        ("/invocations", b"{not json", 400, "BAD_REQUEST_JSON"),
        ("/invocations", b"[1, 2]", 400, "BAD_REQUEST"),
        ("/invocations", {"input": "s3://studies/phi.zip"}, 422, "PHI_PRESENT"),
        ("/invocations", {"input": "boom"}, 500, "INTERNAL_ERROR"),
        ("/nowhere", {}, 404, "NOT_FOUND"),
        ("/endpoints/ich-scoring/async-invocations", b"", 400, "MISSING_INPUT_LOCATION"),
    ],
)
def test_errors_carry_a_status_and_the_server_keeps_serving(server, path, body, status, code):
    url, _, _ = server
    got_status, got_body, _ = call(f"{url}{path}", "POST", body)
    assert (got_status, got_body["code"]) == (status, code)
    assert "PatientName" not in json.dumps(got_body) or code == "PHI_PRESENT"
    assert call(f"{url}/ping")[0] == 200


def test_oversized_request_is_refused_before_its_body_is_read(server):
    url, _, _ = server
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("POST", "/invocations")
    connection.putheader("Content-Length", str(6 * 1024 * 1024 + 1))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413 and json.loads(response.read())["code"] == "REQUEST_TOO_LARGE"
    connection.close()
    assert call(f"{url}/ping")[0] == 200


def _wait_for(s3, bucket, key, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            time.sleep(0.05)
    raise AssertionError(f"s3://{bucket}/{key} never appeared")


def test_async_invocation_reads_input_from_s3_and_writes_output(server):
    url, _service, s3 = server
    s3.put_object(
        Bucket="studies", Key="requests/r1.json", Body=json.dumps({"input": "s3://studies/c.zip"}).encode()
    )
    status, body, headers = call(
        f"{url}/endpoints/ich-scoring/async-invocations",
        "POST",
        b"",
        {"X-Amzn-SageMaker-InputLocation": "s3://studies/requests/r1.json"},
    )
    assert status == 202
    assert headers["X-Amzn-SageMaker-OutputLocation"] == body["OutputLocation"]
    out = S3Location.parse(body["OutputLocation"])
    assert out.key.startswith("scores/") and out.key.endswith(".out")
    result = _wait_for(s3, out.bucket, out.key)
    assert result["stacks"][0]["input"] == "s3://studies/c.zip"


def test_async_rejection_is_written_to_the_failure_location(server):
    url, _service, s3 = server
    s3.put_object(
        Bucket="studies", Key="requests/r2.json", Body=json.dumps({"input": "s3://studies/phi.zip"}).encode()
    )
    _, body, _ = call(
        f"{url}/endpoints/ich-scoring/async-invocations",
        "POST",
        b"",
        {"X-Amzn-SageMaker-InputLocation": "s3://studies/requests/r2.json"},
    )
    failure = S3Location.parse(body["FailureLocation"])
    assert _wait_for(s3, failure.bucket, failure.key) == {
        "status": 422,
        "code": "PHI_PRESENT",
        "reason": "the study carries identifying attributes: PatientName",
    }
