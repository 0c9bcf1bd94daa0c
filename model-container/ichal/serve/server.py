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
                                               asynchronous-inference platform does around a container

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
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .s3_location import S3Location

log = logging.getLogger("ichal.serve")

MAX_REQUEST_BYTES = 6 * 1024 * 1024  # SageMaker real-time payload limit
ASYNC_PATH = re.compile(r"^/endpoints/(?P<name>[A-Za-z0-9-]{1,63})/async-invocations$")
SYNC_PATH = re.compile(r"^/endpoints/(?P<name>[A-Za-z0-9-]{1,63})/invocations$")


class RequestError(Exception):
    """A request the server refuses; ``status`` is 4xx, ``code`` machine-readable, ``reason`` one line."""

    def __init__(self, status: int, code: str, reason: str):
        super().__init__(f"{code}: {reason}")
        self.status = status
        self.code = code
        self.reason = reason

    def body(self) -> dict[str, str]:
        return {"code": self.code, "reason": self.reason}


Scorer = Callable[[dict[str, Any]], dict[str, Any]]
"""Scores one parsed request; raises RequestError for inputs it refuses."""


@dataclass
class ScoringService:
    scorer: Scorer
    s3: Any = None
    """boto3 S3 client for asynchronous invocations."""
    async_output: S3Location | None = None
    """Where asynchronous results go (``<prefix>/<inference id>.out`` / ``.error``)."""
    ready: Callable[[], bool] = lambda: True
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pending: set[threading.Thread] = field(default_factory=set)

    def invoke(self, body: bytes) -> dict[str, Any]:
        try:
            request = json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RequestError(400, "BAD_REQUEST_JSON", f"request body is not JSON: {error.msg if hasattr(error, 'msg') else error}")
        if not isinstance(request, dict):
            raise RequestError(400, "BAD_REQUEST", "request body must be a JSON object")
        # One model, one accelerator: score one request at a time; queueing is SageMaker's job.
        with self._lock:
            return self.scorer(request)

    def invoke_async(self, input_location: str | None) -> tuple[dict[str, Any], dict[str, str]]:
        if not input_location:
            raise RequestError(400, "MISSING_INPUT_LOCATION", "X-Amzn-SageMaker-InputLocation header is required")
        try:
            source = S3Location.parse(input_location)
        except ValueError as error:
            raise RequestError(400, "BAD_INPUT_LOCATION", str(error))
        if self.s3 is None or self.async_output is None:
            raise RequestError(501, "ASYNC_NOT_CONFIGURED", "asynchronous inference needs an S3 client and an output prefix")
        inference_id = str(uuid.uuid4())
        output = self.async_output.child(f"{inference_id}.out")
        failure = self.async_output.child(f"{inference_id}.error")
        worker = threading.Thread(target=self._run_async, args=(source, output, failure), daemon=True, name=f"async-{inference_id}")
        self._pending.add(worker)
        worker.start()
        headers = {"X-Amzn-SageMaker-OutputLocation": output.uri, "X-Amzn-SageMaker-FailureLocation": failure.uri}
        return {"InferenceId": inference_id, "OutputLocation": output.uri, "FailureLocation": failure.uri}, headers

    def _run_async(self, source: S3Location, output: S3Location, failure: S3Location) -> None:
        try:
            body = self.s3.get_object(Bucket=source.bucket, Key=source.key)["Body"].read()
            result = self.invoke(body)
            self._put(output, result)
        except RequestError as error:
            self._put(failure, {"status": error.status, **error.body()})
        except Exception as error:  # a fault: recorded where the platform records it, never silent
            log.exception("asynchronous invocation failed")
            self._put(failure, {"status": 500, "code": "INTERNAL_ERROR", "reason": type(error).__name__})
        finally:
            self._pending.discard(threading.current_thread())

    def _put(self, where: S3Location, payload: dict[str, Any]) -> None:
        self.s3.put_object(
            Bucket=where.bucket, Key=where.key, Body=json.dumps(payload).encode(), ContentType="application/json"
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
                raise RequestError(413, "REQUEST_TOO_LARGE", f"request of {length} bytes exceeds {MAX_REQUEST_BYTES}; send S3 locations, not voxels")
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
                elif ASYNC_PATH.match(self.path):
                    self._body()  # the request itself lives in S3; discard any body
                    payload, headers = service.invoke_async(self.headers.get("X-Amzn-SageMaker-InputLocation"))
                    self._send(202, payload, headers)
                else:
                    self._send(404, {"code": "NOT_FOUND", "reason": f"no route POST {self.path}"})
            except RequestError as error:
                if error.status == 413:
                    self.close_connection = True  # the unread body must not be parsed as the next request
                self._send(error.status, error.body())
            except Exception as error:
                log.exception("invocation failed")
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"code": "INTERNAL_ERROR", "reason": type(error).__name__})

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
