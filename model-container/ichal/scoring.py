"""One scoring request end to end: read the study → validate → model grid → ensemble → features.

Request (JSON)::

    {"input": "s3://bucket/uploads/study.zip", "versionId": "...",          # the study, by location
     "overlayPrefix": "s3://bucket/overlays/<stack id>/",                   # optional
     "topK": 200, "thresholds": [0.3, 0.5, 0.7],                            # optional, this request only
     "allowedPrivateCreators": ["GEMS_IDEN_01"]}                            # optional, this request only

``topK`` (K, a positive integer) and ``thresholds`` (τ, a non-empty strictly increasing list of
numbers in (0, 1)) override the model manifest's ``top_k`` and ``thresholds`` for this request only
(the ingest Lambda sends the institution's configured values); absent, the manifest's apply.
``allowedPrivateCreators`` (at most 100 DICOM private creator values, 1–64 characters, not blank,
no backslash or control character) lets the private elements of those creators pass the PHI check
(``ichal.io.phi``; the institution config's ``deidentification.allowedPrivateCreators``); absent, none
pass. Invalid values are answered 400 ``BAD_REQUEST`` with a reason naming the field.

Response (every field name camelCase, as in the request; ``wire_form``)::

    {"modelVersion": "...", "input": "...", "versionId": "...", "timings": {...},
     "stacks": [{"index", "seriesUid", "contentSha256", "geometry", "frames", "stackUncertainty", "topK",
                 "boundaryLength", "components", "perThreshold", "stackScore", "frameScores", "nRegions",
                 "regions", "overlays", "viewer", "thumbnails", "timings"}, ...]}

``timings`` are seconds per stage; the stage names inside are data and keep their own spelling.

One study may hold several axial series: each is a stack with its own entry. A study the readers
refuse (``ichal.io.InputRejected``: wrong modality, PHI, corrupt, zip bomb, …) is answered 422 with
its reason code and is never scored. Overlays (mean heatmap and JS divergence on the model grid,
quantised to uint8, compressed) go to ``overlayPrefix`` for the annotators' page. ``geometry`` is the
stack's canonical grid (``CtStack.geometry``: ``shape`` [frames, rows, columns] and the NIfTI RAS+
``affine`` of voxel (column, row, frame)): the grid an annotation mask must match.

Concurrency: a request runs in three stages, and only the middle one holds the scorer's accelerator
lock — (1) parse, read and decode the study, put each series on the model grid and window it (CPU);
(2) ensemble forward pass and features, with the overlay maps quantised on the device and copied to
the host (the accelerator, one request at a time); (3) compress and upload the overlays and assemble
the response (CPU, network). With two or more requests in flight (SageMaker sends up to
``MaxConcurrentInvocationsPerInstance``), the next study is read while the GPU works on the current
one, so the container's throughput approaches the forward pass's own. ``timings.accelerator_wait``
reports how long a request queued for the lock.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import math
import re
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from botocore.exceptions import ClientError

from .features.stack_features import stack_features
from .io import DEFAULT_LIMITS, InputLimits, InputRejected, read_stacks
from .io.stack import CtStack
from .model.ensemble import Ensemble, read_manifest, weights_digest
from .preprocessing import to_model_grid, window_channels
from .request_error import RequestError
from .serve.s3_location import S3Location
from .thumbnails import render_thumbnails
from .viewer_volumes import on_stack_grid, viewer_volumes

MAX_REGIONS_IN_RESPONSE = 50
MAX_PRIVATE_CREATORS = 100
# A private creator is a DICOM LO value: up to 64 characters, no backslash, no control character.
_PRIVATE_CREATOR = re.compile(r"[^\\\x00-\x1f\x7f]{1,64}")
JS_MAX = float(np.log(2.0))


@dataclass
class ScoringOptions:
    top_k: int = 200
    thresholds: tuple[float, ...] = (0.3, 0.5, 0.7)
    detection_threshold: float = 0.5
    grid_size: int = 512
    batch_size: int = 64


@dataclass
class PreparedStack:
    """One stack after the CPU stage: model-grid frames, windowed, ready for the ensemble."""

    frames: torch.Tensor
    """[F, C, H, W] float32 model input, on the host."""
    n_frames: int
    """Frames of the stack as read (before the model grid)."""
    series_uid: str | None
    preprocess_s: float
    content_sha256: str | None = None
    """``CtStack.content_sha256`` of the stack as read (the records' duplicate key)."""
    geometry: dict[str, list] | None = None
    """``CtStack.geometry()``: the grid an annotation mask must match."""


class StackScorer:
    """The loaded ensemble and the options it was trained with (from its manifest)."""

    def __init__(
        self,
        ensemble: Ensemble,
        options: ScoringOptions,
        model_version: str,
        *,
        s3: Any = None,
        device: str | None = None,
    ):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.ensemble = ensemble.to(self.device).eval()
        self.options = options
        self.model_version = model_version
        self.s3 = s3
        cuda = self.device.type == "cuda"
        # Mixed precision and channels-last on the GPU (toolchain reference: fp16 channels-last fastest on H100).
        self.amp_dtype = torch.float16 if cuda else None
        self.channels_last = cuda
        self.batch_size = 384 if cuda else options.batch_size
        # One model, one accelerator: only the forward pass and the features hold this lock, so that
        # reading and decoding the next study overlaps the current one's GPU work.
        self.accelerator = threading.Lock()

    @classmethod
    def from_model_dir(
        cls, model_dir: str | Path, *, s3: Any = None, device: str | None = None
    ) -> StackScorer:
        manifest = read_manifest(model_dir)
        ensemble = Ensemble.load(model_dir, map_location="cpu")
        options = ScoringOptions(
            top_k=int(manifest.get("top_k", 200)),
            thresholds=tuple(float(t) for t in manifest.get("thresholds", (0.3, 0.5, 0.7))),
            detection_threshold=float(manifest.get("detection_threshold", 0.5)),
            grid_size=int(manifest.get("grid_size", 512)),
        )
        version = f"{manifest['architecture']}-w{manifest['width']}-x{manifest['ensemble_size']}-{weights_digest(manifest)}"
        return cls(ensemble, options, version, s3=s3, device=device)

    # ---- one stack ---------------------------------------------------------------------------
    def prepare_stack(self, stack: CtStack, options: ScoringOptions | None = None) -> PreparedStack:
        """CPU stage: the stack on the model grid, windowed into the model's input channels."""
        options = options or self.options
        t0 = time.perf_counter()
        grid, _ = to_model_grid(stack.hu, stack.pixel_spacing, options.grid_size)
        frames = torch.from_numpy(window_channels(grid))
        content = stack.content_sha256()
        elapsed = time.perf_counter() - t0
        return PreparedStack(frames, stack.frames, stack.series_uid, elapsed, content, stack.geometry())

    def compute_stack(
        self, prepared: PreparedStack, options: ScoringOptions | None = None
    ) -> tuple[dict[str, Any], Any]:
        """Accelerator stage: ensemble forward pass and features of one prepared stack.

        Returns (JSON-ready result, features with the heatmap tensors on the model's device). Callers
        that share the scorer between threads hold ``self.accelerator`` around this call.
        """
        options = options or self.options
        timings: dict[str, float] = {"preprocess": prepared.preprocess_s}
        t0 = time.perf_counter()
        # Probabilities stay on the model's device: on a GPU the features then run there too (torch
        # backend); post-processing on the CPU would cost more than the forward pass itself.
        probs = self.ensemble.predict(
            prepared.frames,
            batch_size=self.batch_size,
            amp_dtype=self.amp_dtype,
            channels_last=self.channels_last,
            output_device=None,
        )
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        timings["forward"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        features = stack_features(
            probs,
            top_k=options.top_k,
            crop=self.ensemble.crop,
            stride=self.ensemble.stride,
            thresholds=options.thresholds,
            detection_threshold=options.detection_threshold,
        )
        timings["features"] = time.perf_counter() - t0
        result = features.to_dict(detail=True, max_regions=MAX_REGIONS_IN_RESPONSE)
        result.pop("timings_s", None)
        result["frames"] = prepared.n_frames
        result["seriesUid"] = prepared.series_uid
        if prepared.content_sha256 is not None:
            result["contentSha256"] = prepared.content_sha256
        if prepared.geometry is not None:
            result["geometry"] = prepared.geometry
        result["timings_s"] = {**timings, **{f"features.{k}": v for k, v in features.timings_s.items()}}
        return result, features

    def score_stack(
        self, stack: CtStack, options: ScoringOptions | None = None
    ) -> tuple[dict[str, Any], Any]:
        """Scores one validated stack (both stages, in the calling thread); returns
        (JSON-ready result, features with heatmap tensors).

        ``options`` replaces the scorer's own (the manifest's) for this call only, e.g. a request's K.
        """
        return self.compute_stack(self.prepare_stack(stack, options), options)

    # ---- one request -------------------------------------------------------------------------
    def request_options(self, request: dict[str, Any]) -> ScoringOptions:
        """The options for one request: the scorer's, with the request's ``topK`` / ``thresholds`` if given.

        Never changes ``self.options`` (shared by every request). Raises RequestError (400) naming the
        field when a value is invalid.
        """
        changes: dict[str, Any] = {}
        top_k = request.get("topK")
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
                raise RequestError(
                    400, "BAD_REQUEST", '"topK" must be a positive integer (K, the patches averaged into V)'
                )
            changes["top_k"] = top_k
        thresholds = request.get("thresholds")
        if thresholds is not None:
            if (
                not isinstance(thresholds, list)
                or not thresholds
                or not all(_is_number(t) and 0.0 < t < 1.0 for t in thresholds)
            ):
                raise RequestError(
                    400, "BAD_REQUEST", '"thresholds" must be a non-empty list of numbers in (0, 1)'
                )
            if any(b <= a for a, b in itertools.pairwise(thresholds)):
                raise RequestError(400, "BAD_REQUEST", '"thresholds" must be strictly increasing')
            changes["thresholds"] = tuple(float(t) for t in thresholds)
        return dataclasses.replace(self.options, **changes) if changes else self.options

    @staticmethod
    def request_limits(request: dict[str, Any]) -> InputLimits:
        """The input checks for one request: the defaults, with the request's ``allowedPrivateCreators``.

        Raises RequestError (400) naming the field when the value is not a list of private creator values.
        """
        creators = request.get("allowedPrivateCreators")
        if creators is None:
            return DEFAULT_LIMITS
        if (
            not isinstance(creators, list)
            or len(creators) > MAX_PRIVATE_CREATORS
            or not all(isinstance(c, str) and _PRIVATE_CREATOR.fullmatch(c) and c.strip() for c in creators)
        ):
            raise RequestError(
                400,
                "BAD_REQUEST",
                f'"allowedPrivateCreators" must be a list of at most {MAX_PRIVATE_CREATORS} DICOM private '
                "creator values (1–64 characters, not blank, no backslash or control character)",
            )
        return dataclasses.replace(DEFAULT_LIMITS, allowed_private_creators=frozenset(creators))

    def handle_request(self, request: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        source = request.get("input")
        if not isinstance(source, str) or not source.startswith("s3://"):
            raise RequestError(400, "BAD_REQUEST", 'request needs "input": an s3:// location of the study')
        version_id = request.get("versionId")
        if version_id is not None and not isinstance(version_id, str):
            raise RequestError(400, "BAD_REQUEST", '"versionId" must be a string')
        overlay_prefix = request.get("overlayPrefix")
        try:
            overlay_root = S3Location.parse(overlay_prefix) if overlay_prefix else None
        except ValueError as error:
            raise RequestError(400, "BAD_REQUEST", f'"overlayPrefix": {error}') from None
        options = self.request_options(request)
        limits = self.request_limits(request)
        t0 = time.perf_counter()
        if version_id is None and self.s3 is not None:
            location = S3Location.parse(source)
            if not self.s3.list_objects_v2(Bucket=location.bucket, Prefix=location.key, MaxKeys=1).get(
                "KeyCount"
            ):
                raise RequestError(
                    404, "INPUT_NOT_FOUND", "no study object (or DICOM prefix) at the given location"
                )
        try:
            stacks = read_stacks(source, s3_client=self.s3, version_id=version_id, limits=limits)
        except InputRejected as rejected:
            raise RequestError(422, rejected.code, rejected.reason) from None
        except ClientError as error:
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if status in (403, 404):
                raise RequestError(
                    404,
                    "INPUT_NOT_FOUND",
                    "the study object (or that version of it) does not exist or is not readable",
                ) from None
            raise
        read_seconds = time.perf_counter() - t0
        prepared = [self.prepare_stack(stack, options) for stack in stacks]
        t0 = time.perf_counter()
        with self.accelerator:
            waited = time.perf_counter() - t0
            computed = []
            for item in prepared:
                result, features = self.compute_stack(item, options)
                maps = overlay_arrays(features) if overlay_root is not None and self.s3 is not None else None
                computed.append((result, maps))
                del features  # the device copies of the maps are not needed past this point
        results = []
        for index, (result, maps) in enumerate(computed):
            result["index"] = index
            if maps is not None:
                t0 = time.perf_counter()
                where = overlay_root.child(f"stack-{index}.npz")
                self.s3.put_object(
                    Bucket=where.bucket,
                    Key=where.key,
                    Body=encode_overlays(maps),
                    ContentType="application/octet-stream",
                )
                result["overlays"] = where.uri
                result["timings_s"]["overlays"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                arrays = on_stack_grid(stacks[index], maps, options.grid_size)
                result["viewer"] = {}
                for name, body in viewer_volumes(stacks[index], arrays).items():
                    target = overlay_root.child(f"stack-{index}-{name}.nii.gz")
                    self.s3.put_object(
                        Bucket=target.bucket, Key=target.key, Body=body, ContentType="application/gzip"
                    )
                    result["viewer"][name] = target.uri
                result["timings_s"]["viewer"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                thumbnails = render_thumbnails(
                    arrays["ct"], arrays["heatmap"], arrays["js"], maps["frame_scores"], f"stack-{index}"
                )
                for name, body in thumbnails.items():
                    target = overlay_root.child(name)
                    kind = "application/json" if name.endswith(".json") else "image/png"
                    self.s3.put_object(Bucket=target.bucket, Key=target.key, Body=body, ContentType=kind)
                result["thumbnails"] = overlay_root.child(f"stack-{index}-thumbnails.json").uri
                result["timings_s"]["thumbnails"] = time.perf_counter() - t0
            results.append(result)
        return wire_form(
            {
                "modelVersion": self.model_version,
                "input": source,
                "versionId": version_id,
                "stacks": results,
                "timings_s": {
                    "read": read_seconds,
                    "accelerator_wait": waited,
                    "total": time.perf_counter() - started,
                },
            }
        )


def _camel(name: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name)


def wire_form(value: Any) -> Any:
    """A result as it goes on the wire: field names camelCase (the request's and the envelope's
    convention; the Python results use snake_case), ``timings_s`` named ``timings`` with its stage
    names kept as they are (they are data, e.g. ``features.uncertainty``)."""
    if isinstance(value, list):
        return [wire_form(item) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key == "timings_s":
            out["timings"] = dict(item)
        else:
            out[_camel(key)] = wire_form(item)
    return out


def _is_number(value: Any) -> bool:
    """A finite JSON number (``true``/``false`` are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def overlay_arrays(features: Any) -> dict[str, np.ndarray]:
    """Mean heatmap and JS map as uint8 (heatmap × 255; JS × 255 / ln 2), quantised on the features'
    device and copied to the host (a quarter of the float32 transfer), plus the frame scores."""
    heat = features.mean_heatmap.detach().float()
    js = features.js_map.detach().float()
    return {
        "mean_heatmap": torch.round(heat.clamp(0, 1) * 255).to(torch.uint8).cpu().numpy(),
        "js_divergence": torch.round((js / JS_MAX).clamp(0, 1) * 255).to(torch.uint8).cpu().numpy(),
        "frame_scores": np.asarray(features.frame_scores, dtype=np.float32),
    }


OVERLAY_DEFLATE_LEVEL = 1
"""zlib level of the overlay npz. ``np.savez_compressed`` uses 6: on a 32 × 512² stack's two maps
that took ~2 s of CPU per stack (several times an H100's forward pass) for ~14 % smaller files;
level 1 took ~0.35 s (bench/bench_scoring.py's container run reports ``overlays`` per request)."""


def encode_overlays(arrays: dict[str, np.ndarray]) -> bytes:
    """The overlay arrays as a compressed npz (what ``overlayPrefix`` receives): the same zip layout
    as ``np.savez_compressed`` (one ``<name>.npy`` member each, DEFLATE, zip64 headers), at
    ``OVERLAY_DEFLATE_LEVEL``; ``np.load`` reads it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(
        buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=OVERLAY_DEFLATE_LEVEL
    ) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
    return buffer.getvalue()


def overlay_npz(features: Any) -> bytes:
    """Mean heatmap and JS map as uint8 (heatmap × 255; JS × 255 / ln 2), compressed npz."""
    return encode_overlays(overlay_arrays(features))


def score_local(stack_source: str | Path, scorer: StackScorer) -> dict[str, Any]:
    """Scores a local file or folder (CLI ``score``); raises InputRejected for refused inputs."""
    stacks = read_stacks(stack_source)
    return wire_form(
        {
            "modelVersion": scorer.model_version,
            "input": str(stack_source),
            "stacks": [dict(scorer.score_stack(s)[0], index=i) for i, s in enumerate(stacks)],
        }
    )


__all__ = [
    "PreparedStack",
    "ScoringOptions",
    "StackScorer",
    "encode_overlays",
    "overlay_arrays",
    "overlay_npz",
    "score_local",
    "wire_form",
]
