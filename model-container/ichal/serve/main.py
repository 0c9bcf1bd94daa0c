"""`serve`: loads the ensemble from the model directory and answers SageMaker's hosting contract.

SageMaker runs the image with the argument ``serve``, unpacks model.tar.gz into /opt/ml/model and
sends traffic to port 8080. Locally: ``python -m ichal serve --model-dir DIR --port 8080
--s3-endpoint http://127.0.0.1:PORT --async-output s3://bucket/prefix/ [--success-topic ARN
--error-topic ARN]``: with topics, each asynchronous result is announced on SNS as the SageMaker
platform announces it (the endpoint config's AsyncInferenceConfig NotificationConfig).

``--concurrency`` (environment ``ICHAL_CONCURRENT_REQUESTS``, default 2; the CDK endpoint sets it to
the endpoint config's ``MaxConcurrentInvocationsPerInstance``): requests worked on at once. Reading
and decoding overlap the model; the model itself runs one request at a time.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from ..io import DEID_PROFILE
from .s3_location import S3_ENDPOINT_ENV, S3Location, s3_client, sns_client
from .server import AsyncNotifier, ScoringService, make_server

CONCURRENCY_ENV = "ICHAL_CONCURRENT_REQUESTS"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ichal serve", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model-dir", type=Path, default=Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    )
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")))
    parser.add_argument(
        "--s3-endpoint", default=os.environ.get(S3_ENDPOINT_ENV), help="S3 endpoint (local emulator)"
    )
    parser.add_argument(
        "--async-output",
        default=os.environ.get("ICHAL_ASYNC_OUTPUT"),
        help="s3:// prefix for asynchronous results",
    )
    parser.add_argument(
        "--success-topic",
        default=os.environ.get("ICHAL_SUCCESS_TOPIC"),
        help="SNS topic for completed async results",
    )
    parser.add_argument(
        "--error-topic",
        default=os.environ.get("ICHAL_ERROR_TOPIC"),
        help="SNS topic for failed async invocations",
    )
    parser.add_argument(
        "--sns-endpoint", default=None, help="SNS endpoint (local emulator); default: --s3-endpoint"
    )
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument(
        "--concurrency",
        type=str,
        default=os.environ.get(CONCURRENCY_ENV, "2"),
        help=f"requests worked on at once (reading overlaps the model; default ${CONCURRENCY_ENV} or 2)",
    )
    parser.add_argument(
        "--ready-file", type=Path, default=None, help="write the bound port here once serving (for tests)"
    )
    args = parser.parse_args(argv)
    try:
        args.concurrency = int(args.concurrency)
    except ValueError:
        args.concurrency = 0
    if args.concurrency < 1:
        parser.error(f"--concurrency (or ${CONCURRENCY_ENV}) must be a positive integer")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr
    )

    from ..scoring import StackScorer

    s3 = s3_client(args.s3_endpoint)
    scorer = StackScorer.from_model_dir(args.model_dir, s3=s3, device=args.device)
    notifier = None
    if args.success_topic or args.error_topic:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        notifier = AsyncNotifier(
            sns=sns_client(args.sns_endpoint or args.s3_endpoint, region),
            success_topic=args.success_topic,
            error_topic=args.error_topic,
            region=region,
        )
    service = ScoringService(
        scorer=scorer.handle_request,
        s3=s3,
        async_output=S3Location.parse(args.async_output) if args.async_output else None,
        notifier=notifier,
        concurrency=args.concurrency,
    )
    server = make_server(service, args.host, args.port)
    port = server.server_address[1]
    logging.getLogger("ichal.serve").info(
        "serving %s on %s:%d, %d request(s) at a time; PHI check: %s",
        scorer.model_version,
        args.host,
        port,
        args.concurrency,
        DEID_PROFILE,
    )
    if args.ready_file:
        args.ready_file.write_text(str(port))

    def stop(*_):
        # shutdown() blocks until serve_forever returns, so it must run off the serving thread.
        import threading

        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever()
    finally:
        service.drain(timeout=30)
        server.server_close()
    return 0
