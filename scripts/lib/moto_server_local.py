"""moto server as the project's local AWS, with two fidelity fixes (started by scripts/lib/moto-server.ts).

1. DynamoDB writes are atomic, as in DynamoDB. moto server answers requests on several threads and
   its DynamoDB backend checks a ConditionExpression and then writes without a lock, so under load two
   concurrent conditional writes to one item can both succeed — which DynamoDB never allows, and which
   the pipeline's idempotency (one record, one scoring request, one completion) relies on. Every
   DynamoDB request (``X-Amz-Target: DynamoDB_…``) is therefore served one at a time. Other services
   keep moto's concurrency (an SQS long poll must not block a table write).
2. With ``ICH_AL_S3_EVENT_VERSION_IDS=1``: S3 event notifications carry ``versionId`` and
   ``sequencer`` as AWS's do for a versioned bucket
   (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html);
   moto 5.2 leaves them out, and the ingest Lambda rightly refuses events without a versionId from its
   versioned bucket. The fields come from the stored object version.

Arguments are moto server's own (``-H 127.0.0.1 -p PORT``). Nothing else changes.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading

import moto.s3.notifications as notifications
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.server import main

_dynamodb_lock = threading.Lock()
_dispatch = DomainDispatcherApplication.__call__


def _call_with_atomic_dynamodb(self, environ, start_response):
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
        with _dynamodb_lock:
            # The body is produced inside the lock: the request is handled when the iterable is built.
            return list(_dispatch(self, environ, start_response))
    return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _call_with_atomic_dynamodb

_original_s3_event = notifications._get_s3_event
_sequence = itertools.count(1)
_sequence_lock = threading.Lock()


def _get_s3_event_with_version(event_name, bucket, key, notification_id):
    event = _original_s3_event(event_name, bucket, key, notification_id)
    obj = event["Records"][0]["s3"]["object"]
    version_id = getattr(key, "version_id", None)
    if version_id and version_id != "null" and getattr(bucket, "is_versioned", False):
        obj["versionId"] = version_id
    with _sequence_lock:
        obj["sequencer"] = f"{next(_sequence):016X}"
    return event


if os.environ.get("ICH_AL_S3_EVENT_VERSION_IDS") == "1":
    notifications._get_s3_event = _get_s3_event_with_version

if __name__ == "__main__":
    sys.exit(main())
