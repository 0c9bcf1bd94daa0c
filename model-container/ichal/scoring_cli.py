"""`score`: one study → the JSON the endpoint returns (without overlays).

    python -m ichal score --model-dir DIR --input study.zip|folder|volume.nii.gz|stack.npz|s3://bucket/key
                          [--s3-endpoint URL] [--version-id ID] [--device cpu|cuda]

A refused input prints ``{"code", "reason"}`` on stderr and exits with 3.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .io import InputRejected
from .request_error import RequestError
from .scoring import StackScorer, score_local
from .serve.s3_location import S3_ENDPOINT_ENV, s3_client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ichal score", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument(
        "--s3-endpoint", default=None, help=f"S3 endpoint for s3:// inputs (default ${S3_ENDPOINT_ENV})"
    )
    parser.add_argument("--version-id", default=None)
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    if args.input.startswith("s3://"):
        scorer = StackScorer.from_model_dir(
            args.model_dir, s3=s3_client(args.s3_endpoint), device=args.device
        )
        try:
            result = scorer.handle_request({"input": args.input, "versionId": args.version_id})
        except RequestError as error:
            print(json.dumps(error.body()), file=sys.stderr)
            return 3
    else:
        scorer = StackScorer.from_model_dir(args.model_dir, device=args.device)
        try:
            result = score_local(args.input, scorer)
        except InputRejected as rejected:
            print(json.dumps(rejected.as_record()), file=sys.stderr)
            return 3
    print(json.dumps(result))
    return 0
