"""HTTP server implementing SageMaker's container contract for the scoring ensemble.

Routes (all JSON):
  GET  /ping                                   200 when the model is loaded (SageMaker health check)
  POST /invocations                            score one request (what SageMaker sends the container)
  POST /endpoints/{name}/invocations           same handler, at the path InvokeEndpoint uses, so the
                                               unchanged @aws-sdk/client-sagemaker-runtime client can
                                               talk to this server locally
  POST /endpoints/{name}/async-invocations     InvokeEndpointAsync: reads the request from the S3 URI in
                                               X-Amzn-SageMaker-InputLocation, answers 202 at once with
                                               the output location, scores in the background and writes
                                               the result (or the error) to S3 — what the SageMaker
                                               asynchronous-inference platform does around a container;
                                               with notification topics configured, it then publishes
                                               the platform's success / error notification to SNS

Errors carry a status: a malformed request is 400, a study the scorer refuses (wrong modality, PHI,
corrupt archive, …) is 422 with {"code", "reason"}; only real faults are 500. The server keeps
serving after any of them.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..request_error import RequestError
from .s3_location import S3Location

log = logging.getLogger("ichal.serve")

MAX_REQUEST_BYTES = 6 * 1024 * 1024  # SageMaker real-time payload limit
ASYNC_PATH = re.compile(r"^/endpoints/(?P<name>[A-Za-z0-9-]{1,63})/async-invocations$")
SYNC_PATH = re.compile(r"^/endpoints/(?P<name>[A-Za-z0-9-]{1,63})/invocations$")


Scorer = Callable[[dict[str, Any]], dict[str, Any]]
"""Scores one parsed request; raises RequestError for inputs it refuses."""


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def async_inference_notification(
    *,
    status: str,
    endpoint_name: str,
    inference_id: str,
    input_location: str,
    received: datetime,
    region: str,
    output_location: str | None = None,
    failure_location: str | None = None,
    failure_reason: str | None = None,
) -> dict[str, Any]:
    """The JSON SageMaker asynchronous inference publishes to the endpoint's success or error topic.

    Shape as documented in "Check prediction results" (SageMaker developer guide, asynchronous
    inference): ``invocationStatus`` "Completed" with ``responseParameters.outputLocation``, or
    "Failed" with ``failureReason`` and ``responseParameters.failureLocation``.
    """
    notification: dict[str, Any] = {
        "awsRegion": region,
        "eventTime": _timestamp(datetime.now(UTC)),
        "receivedTime": _timestamp(received),
        "invocationStatus": status,
        "requestParameters": {
            "contentType": "application/json",
            "endpointName": endpoint_name,
            "inputLocation": input_location,
        },
        "responseParameters": {"contentType": "application/json"},
        "inferenceId": inference_id,
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    }
    if output_location:
        notification["responseParameters"]["outputLocation"] = output_location
    if failure_location:
        notification["responseParameters"]["failureLocation"] = failure_location
    if failure_reason:
        notification["failureReason"] = failure_reason
    return notification


def failure_reason_for(status: int) -> str:
    """SageMaker's one-line ``failureReason`` for a container answer with this HTTP status (no study data)."""
    kind = "client" if 400 <= status < 500 else "server"
    return (
        f"ClientError: Received {kind} error ({status}) from model. "
        "See the SageMaker Endpoint logs in your account for more information."
    )


@dataclass
class AsyncNotifier:
    """Publishes asynchronous-inference notifications to SNS, as the platform does after an invocation.

    Either topic may be None (the endpoint config names none): nothing is published for that outcome.
    """

    sns: Any
    """boto3 SNS client."""
    success_topic: str | None = None
    error_topic: str | None = None
    region: str = "us-east-1"

    def publish(self, notification: dict[str, Any]) -> None:
        topic = self.success_topic if notification["invocationStatus"] == "Completed" else self.error_topic
        if topic:
            self.sns.publish(TopicArn=topic, Message=json.dumps(notification))


@dataclass
class ScoringService:
    scorer: Scorer
    s3: Any = None
    """boto3 S3 client for asynchronous invocations."""
    async_output: S3Location | None = None
    """Where asynchronous results go (``<prefix>/<inference id>.out`` / ``.error``)."""
    ready: Callable[[], bool] = lambda: True
    notifier: AsyncNotifier | None = None
    """Publishes the success / error notification after each asynchronous result (None: no topics)."""
    concurrency: int = 1
    """Requests the scorer works on at once; the rest wait here (bounds the memory of studies being
    read). 1 runs them strictly one after another. The container sets it to SageMaker's
    ``MaxConcurrentInvocationsPerInstance`` so that the next study is read while the accelerator works
    on the current one (``StackScorer`` holds its own accelerator lock around the model)."""
    _slots: threading.BoundedSemaphore = field(init=False, repr=False)
    _pending: set[threading.Thread] = field(default_factory=set)

    def __post_init__(self) -> None:
        if (
            isinstance(self.concurrency, bool)
            or not isinstance(self.concurrency, int)
            or self.concurrency < 1
        ):
            raise ValueError(f"concurrency must be a positive integer, got {self.concurrency!r}")
        self._slots = threading.BoundedSemaphore(self.concurrency)

    def invoke(self, body: bytes) -> dict[str, Any]:
        try:
            request = json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RequestError(
                400,
                "BAD_REQUEST_JSON",
                f"request body is not JSON: {error.msg if hasattr(error, 'msg') else error}",
            )
        if not isinstance(request, dict):
            raise RequestError(400, "BAD_REQUEST", "request body must be a JSON object")
        with self._slots:
            return self.scorer(request)

    def invoke_async(
        self, input_location: str | None, endpoint_name: str = "local"
    ) -> tuple[dict[str, Any], dict[str, str]]:
        if not input_location:
            raise RequestError(
                400, "MISSING_INPUT_LOCATION", "X-Amzn-SageMaker-InputLocation header is required"
            )
        try:
            source = S3Location.parse(input_location)
        except ValueError as error:
            raise RequestError(400, "BAD_INPUT_LOCATION", str(error))
        if self.s3 is None or self.async_output is None:
            raise RequestError(
                501, "ASYNC_NOT_CONFIGURED", "asynchronous inference needs an S3 client and an output prefix"
            )
        inference_id = str(uuid.uuid4())
        output = self.async_output.child(f"{inference_id}.out")
        failure = self.async_output.child(f"{inference_id}.error")
        received = datetime.now(UTC)
        context = {
            "endpoint_name": endpoint_name,
            "inference_id": inference_id,
            "input_location": input_location,
            "received": received,
        }
        worker = threading.Thread(
            target=self._run_async,
            args=(source, output, failure, context),
            daemon=True,
            name=f"async-{inference_id}",
        )
        self._pending.add(worker)
        worker.start()
        headers = {
            "X-Amzn-SageMaker-OutputLocation": output.uri,
            "X-Amzn-SageMaker-FailureLocation": failure.uri,
        }
        return {
            "InferenceId": inference_id,
            "OutputLocation": output.uri,
            "FailureLocation": failure.uri,
        }, headers

    def _run_async(
        self,
        source: S3Location,
        output: S3Location,
        failure: S3Location,
        context: dict[str, Any] | None = None,
    ) -> None:
        try:
            try:
                body = self.s3.get_object(Bucket=source.bucket, Key=source.key)["Body"].read()
                result = self.invoke(body)
                self._put(output, result)
                self._notify(context, "Completed", output_location=output.uri)
            except RequestError as error:
                self._put(failure, {"status": error.status, **error.body()})
                self._notify(context, "Failed", failure_location=failure.uri, http_status=error.status)
            except Exception as error:  # a fault: recorded where the platform records it, never silent
                log.exception("asynchronous invocation failed")
                self._put(failure, {"status": 500, "code": "INTERNAL_ERROR", "reason": type(error).__name__})
                self._notify(context, "Failed", failure_location=failure.uri, http_status=500)
        except Exception:  # writing the result or publishing failed: the platform would log it
            log.exception("asynchronous result could not be written or announced")
        finally:
            self._pending.discard(threading.current_thread())

    def _notify(
        self,
        context: dict[str, Any] | None,
        status: str,
        *,
        output_location: str | None = None,
        failure_location: str | None = None,
        http_status: int | None = None,
    ) -> None:
        if self.notifier is None or context is None:
            return
        notification = async_inference_notification(
            status=status,
            region=self.notifier.region,
            output_location=output_location,
            failure_location=failure_location,
            failure_reason=failure_reason_for(http_status) if http_status else None,
            **context,
        )
        self.notifier.publish(notification)
        log.info("published %s notification for inference %s", status, context["inference_id"])

    def _put(self, where: S3Location, payload: dict[str, Any]) -> None:
        self.s3.put_object(
            Bucket=where.bucket,
            Key=where.key,
            Body=json.dumps(payload).encode(),
            ContentType="application/json",
        )

    def drain(self, timeout: float = 60.0) -> None:
        """Waits for background asynchronous invocations (tests, shutdown)."""
        for worker in list(self._pending):
            worker.join(timeout)


def make_server(service: ScoringService, host: str = "0.0.0.0", port: int = 8080) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        server_version = "ichal-serve"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # request lines carry no identifiers
            log.info("%s %s", self.address_string(), format % args)

        def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_REQUEST_BYTES:
                raise RequestError(
                    413,
                    "REQUEST_TOO_LARGE",
                    f"request of {length} bytes exceeds {MAX_REQUEST_BYTES}; send S3 locations, not voxels",
                )
            return self.rfile.read(length) if length else b""

        def do_GET(self) -> None:
            if self.path == "/ping":
                ok = service.ready()
                self._send(200 if ok else 503, {"status": "healthy" if ok else "loading"})
            else:
                self._send(404, {"code": "NOT_FOUND", "reason": f"no route GET {self.path}"})

        def do_POST(self) -> None:
            try:
                if self.path == "/invocations" or SYNC_PATH.match(self.path):
                    self._send(200, service.invoke(self._body()))
                elif match := ASYNC_PATH.match(self.path):
                    self._body()  # the request itself lives in S3; discard any body
                    payload, headers = service.invoke_async(
                        self.headers.get("X-Amzn-SageMaker-InputLocation"), match.group("name")
                    )
                    self._send(202, payload, headers)
                else:
                    self._send(404, {"code": "NOT_FOUND", "reason": f"no route POST {self.path}"})
            except RequestError as error:
                if error.status == 413:
                    self.close_connection = True  # the unread body must not be parsed as the next request
                self._send(error.status, error.body())
            except Exception as error:
                log.exception("invocation failed")
                self._send(
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    {"code": "INTERNAL_ERROR", "reason": type(error).__name__},
                )

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
