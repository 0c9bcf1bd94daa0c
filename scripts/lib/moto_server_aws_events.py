"""moto server whose S3 event notifications carry ``versionId`` and ``sequencer`` as AWS's do.

AWS documents both fields in every ``ObjectCreated`` record of a versioned bucket
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html);
moto 5.2 leaves them out, so a faithful consumer (the ingest Lambda refuses events without a
versionId from its versioned bucket) could not be driven by moto's own notifications. This wraps
moto's event builder, adds the two fields from the stored object version, and starts moto server
with the usual arguments (``-H 127.0.0.1 -p PORT``). Nothing else changes.
"""

from __future__ import annotations

import itertools
import sys
import threading

import moto.s3.notifications as notifications
from moto.server import main

_original = notifications._get_s3_event
_sequence = itertools.count(1)
_lock = threading.Lock()


def _get_s3_event_with_version(event_name, bucket, key, notification_id):
    event = _original(event_name, bucket, key, notification_id)
    obj = event["Records"][0]["s3"]["object"]
    version_id = getattr(key, "version_id", None)
    if version_id and version_id != "null" and getattr(bucket, "is_versioned", False):
        obj["versionId"] = version_id
    with _lock:
        obj["sequencer"] = f"{next(_sequence):016X}"
    return event


notifications._get_s3_event = _get_s3_event_with_version

if __name__ == "__main__":
    sys.exit(main())
