#!/usr/bin/env python3
"""Throughput benchmark of the scoring path: read → preprocess → forward → features, per stack.

This is a benchmark script, not a test (nothing here is collected by pytest). It times, per
configuration, the four stages the model container runs for one CT stack:

* **read**: ``ichal.io.read_stacks`` on an in-memory DICOM zip (32 frames of 512², written from a
  synthetic phantom by ``ichal.phantoms.write_dicom_zip``), i.e. the real zip + DICOM decode path
  (no S3 download);
* **preprocess**: ``ichal.preprocessing.to_model_grid`` + ``window_channels`` (CPU, numpy);
* **forward**: ``Ensemble.predict`` (4 × DRN-D-38 PatchFCN, sliding window of 160² crops), including
  the host → device copy of the frames and, when the features run on the CPU, the device → host
  copy of the probabilities; ``output_device=None`` keeps them on the GPU for GPU features;
* **features**: ``ichal.features.stack_features`` (JS uncertainty, top-K, boundary length and
  components at 3 thresholds, detection) with the torch backend on the GPU or scipy on the CPU.

and reports the median over ``--repeats`` runs of each stage, the end-to-end (sequential, as
``ichal.scoring.StackScorer.score_stack`` runs them) stacks/s, the forward-only stacks/s and their
ratio in percent (goal on a GPU: end-to-end within 10 % of forward-only, i.e. >= 90 %). On CUDA it
also measures a *pipelined* throughput: read + preprocess of the next stacks on a thread pool while
the main thread runs forward + features, i.e. what an overlapped server could reach.

**Container** (``--container-stacks N``; default 6 on CUDA, 3 with ``--quick``, 0 on the CPU): the
real serving code — ``ichal.serve.server.ScoringService`` over ``ichal.scoring.StackScorer`` with
the container's own GPU settings (fp16 autocast, channels_last, batch 384, features on the device),
N requests ``{"input", "versionId", "overlayPrefix"}`` sent by ``--container-concurrency`` client
threads (default ``1 2 4``: one at a time; two, as SageMaker sends with the CDK default
MaxConcurrentInvocationsPerInstance = 2; four). S3 is an in-memory stand-in (get / head / put), so the
figure is the container's own cost without network. Reported: container stacks/s and its ratio to
the forward-only stacks/s of the same scorer's ``Ensemble.predict`` on the same stacks. With random
weights the scorer's forward pass runs in full and is then handed the phantom probabilities (as
above) so that the features cost what they would on a trained model's heatmaps.

The weights are random (``build_ensemble``, width ``--width``) unless ``--model-dir`` names a saved
ensemble: timings of the network do not depend on the weights. The *features* do (label
propagation converges in a number of iterations that depends on the masks), and random weights give
dense, noisy heatmaps unlike a trained model's, so with random weights the features are timed by
default on probabilities synthesised from the phantom's exact hemorrhage mask (blurred per model,
with low background speckle; ``--feature-probs phantom``); ``--feature-probs model`` times them on
the network's own output instead. The forward always runs and is always timed.

CPU: only fp32. A full stack at width 1.0 takes many minutes on a few cores, so only
``--cpu-frames`` frames (default 2, from the middle of the stack) are forwarded, and the forward
figure is scaled by 32 / frames to a full stack. Read and preprocess are always measured on the full
32-frame stack, and so are the features when they run on phantom probabilities (with
``--feature-probs model`` they run on the forwarded frames only and are scaled likewise). The output
says what was scaled.

CUDA (each one when asked for; a configuration that fails is reported and the rest go on):
precisions ``tf32`` (fp32 with TF32 allowed), ``bf16`` (autocast), ``fp16cl`` (fp16 autocast +
channels_last, what the container uses on a GPU) × ``--batch-sizes`` × ``--strides`` × features on
the GPU (torch backend, probabilities kept on the device) or on the CPU (scipy), so the ratio of the
two is visible. Warm-up runs precede the timed ones, ``torch.cuda.synchronize()`` brackets every
timed region.

Run it::

    # here (CPU), small:
    cd model-container && .venv/bin/python bench/bench_scoring.py --device cpu --cpu-frames 2 --repeats 1
    # on a GPU machine (full matrix, a few minutes on an H100):
    cd model-container && .venv/bin/python bench/bench_scoring.py --device cuda --out bench.json
    # on a GPU machine, the short prepared run (< ~3 minutes on an H100):
    cd model-container && .venv/bin/python bench/bench_scoring.py --device cuda --quick --out bench.json
    # here, the container path only, on a small model and short stacks (a few minutes on 2 cores):
    cd model-container && .venv/bin/python bench/bench_scoring.py --device cpu --width 0.125 \
        --container-only --container-stacks 3 --container-frames 20

Any Python with CUDA PyTorch, numpy, scipy, scikit-image, pydicom and nibabel will do in place of
``.venv/bin/python``. Results are printed as a table and, with ``--out FILE``, written as JSON
(rewritten after every configuration, so a run cut short still leaves what it measured).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
import traceback
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]  # model-container/
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

FULL_FRAMES = 32
GRID = 512
PRECISIONS = ("tf32", "bf16", "fp16cl")
QUICK_CUDA = (  # (precision, batch size, stride, features on): most informative first
    ("fp16cl", 384, 80, "gpu"),
    ("fp16cl", 384, 80, "cpu"),
    ("fp16cl", 384, 160, "gpu"),
    ("fp16cl", 64, 80, "gpu"),
    ("bf16", 384, 80, "gpu"),
    ("tf32", 384, 80, "gpu"),
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench_scoring.py",
        description="Per-stage timing (read, preprocess, forward, features) and stacks/s of the "
        "scoring path on phantom DICOM stacks. See the module docstring for details.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (cuda when available)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="CUDA: a short list of configurations, 1 phantom stack, 3 pipelined stacks, "
        "time budget 150 s (CPU: same as the defaults)",
    )
    p.add_argument(
        "--model-dir", help="a saved ensemble (manifest.json + model_<i>.pt); default: random weights"
    )
    p.add_argument("--width", type=float, default=1.0, help="channel width multiplier of the random ensemble")
    p.add_argument("--arch", default="drn_d_38", help="architecture of the random ensemble")
    p.add_argument("--ensemble-size", type=int, default=4, help="models in the random ensemble")
    p.add_argument(
        "--stacks",
        type=int,
        default=None,
        help="distinct phantom stacks cycled through (default 2; --quick 1)",
    )
    p.add_argument("--seed", type=int, default=0, help="first phantom seed")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per configuration (median reported)")
    p.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed runs per configuration first (CUDA: full stacks; CPU: one crop per model)",
    )
    p.add_argument(
        "--batch-sizes", type=int, nargs="+", default=[64, 384], help="CUDA: crops per forward batch"
    )
    p.add_argument("--strides", type=int, nargs="+", default=[80, 160], help="CUDA: sliding-window strides")
    p.add_argument(
        "--precisions",
        nargs="+",
        choices=PRECISIONS,
        default=list(PRECISIONS),
        help="CUDA: tf32 = fp32 with TF32; bf16 = bf16 autocast; fp16cl = fp16 autocast + channels_last",
    )
    p.add_argument(
        "--features",
        nargs="+",
        choices=("gpu", "cpu"),
        default=["gpu", "cpu"],
        help="CUDA: where the features run (gpu = torch backend on the device, cpu = scipy)",
    )
    p.add_argument(
        "--cpu-frames",
        type=int,
        default=2,
        help="CPU: frames forwarded per stack; the forward (and features on its output) are scaled by 32/frames",
    )
    p.add_argument("--cpu-batch-size", type=int, default=64, help="CPU: crops per forward batch")
    p.add_argument("--cpu-strides", type=int, nargs="+", default=[80], help="CPU: sliding-window strides")
    p.add_argument(
        "--feature-probs",
        choices=("auto", "model", "phantom"),
        default="auto",
        help="probabilities the features are timed on: the network's output, or synthesised "
        "from the phantom mask (auto: phantom with random weights, model with --model-dir)",
    )
    p.add_argument(
        "--pipeline-stacks",
        type=int,
        default=None,
        help="CUDA: stacks in the pipelined run, 0 = skip it (default 4; --quick 3)",
    )
    p.add_argument(
        "--prefetch-workers", type=int, default=2, help="CUDA: read+preprocess threads when pipelined"
    )
    p.add_argument(
        "--container-stacks",
        type=int,
        default=None,
        help="requests through the real ScoringService + StackScorer (default CUDA 6, --quick 3, CPU 0)",
    )
    p.add_argument(
        "--container-concurrency",
        type=int,
        nargs="+",
        default=[1, 2, 4],
        help="client threads (= ScoringService concurrency) in the container runs",
    )
    p.add_argument(
        "--container-frames",
        type=int,
        default=FULL_FRAMES,
        help="frames per stack in the container runs (>= 20, the readers' minimum)",
    )
    p.add_argument("--container-only", action="store_true", help="skip the per-stage configurations")
    p.add_argument(
        "--cudnn-benchmark",
        action="store_true",
        help="set torch.backends.cudnn.benchmark (the container does not)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    p.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="seconds; configurations that would start after it are skipped "
        "(default: 150 with --quick on CUDA, 480 on CUDA, none on CPU)",
    )
    p.add_argument("--out", help="also write the results as JSON to this file")
    p.add_argument("--verbose", action="store_true", help="print tracebacks of failed configurations")
    return p


# ------------------------------------------------------------------------------------------ helpers
def _log(msg: str = "") -> None:
    print(msg, flush=True)


def _median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass(frozen=True)
class Config:
    device: str  # "cpu" | "cuda" | "cuda:N"
    precision: str  # fp32 (CPU) | tf32 | bf16 | fp16cl
    batch_size: int
    stride: int
    features_on: str  # "gpu" | "cpu"
    frames: int  # frames forwarded per stack

    @property
    def name(self) -> str:
        prec = {"fp16cl": "fp16+cl"}.get(self.precision, self.precision)
        dev = "cuda" if self.device.startswith("cuda") else "cpu"
        extra = f" {self.frames}/{FULL_FRAMES}fr" if self.frames != FULL_FRAMES else ""
        return f"{dev} {prec} bs{self.batch_size} s{self.stride} feat={self.features_on}{extra}"


@dataclass
class Item:
    """One phantom stack: its DICOM zip, and the synthetic probabilities for the features stage."""

    seed: int
    zip_bytes: bytes
    phantom_probs: Any  # np.float32 [M, F, H, W] on the model grid
    placed: dict[str, Any] = field(default_factory=dict)  # device string -> torch tensor


def _phantom_probs(mask: Any, n_models: int, seed: int) -> Any:
    """Probabilities a trained-looking ensemble might give: the exact mask, blurred differently
    per model and scaled below 1, plus sparse low-amplitude background speckle."""
    import numpy as np
    from scipy import ndimage

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xBE7C4]))
    base = mask.astype(np.float32)
    out = np.empty((n_models, *base.shape), dtype=np.float32)
    for m in range(n_models):
        sigma = 1.0 + 0.6 * m
        p = ndimage.gaussian_filter(base, sigma=(0, sigma, sigma)) * np.float32(rng.uniform(0.8, 0.98))
        speckle = ndimage.gaussian_filter(rng.random(base.shape, dtype=np.float32), sigma=(0, 3, 3))
        speckle = np.clip((speckle - 0.5) * 6.0, 0.0, 1.0) * np.float32(0.4)
        out[m] = np.clip(np.maximum(p, speckle), 0.0, 1.0)
    return out


def _make_items(n: int, seed: int, n_models: int, frames: int = FULL_FRAMES) -> list[Item]:
    from ichal.phantoms import generate_stack, write_dicom_zip
    from ichal.preprocessing import mask_to_model_grid, to_model_grid

    items = []
    for i in range(n):
        s = seed + i
        stack = generate_stack(s, negative=False, size=GRID, frames=frames)
        buffer = io.BytesIO()
        write_dicom_zip(stack, buffer)
        _, transform = to_model_grid(stack.hu, stack.pixel_spacing, GRID)
        mask = mask_to_model_grid(stack.mask, transform)  # phantom frames are in ascending position
        items.append(
            Item(seed=s, zip_bytes=buffer.getvalue(), phantom_probs=_phantom_probs(mask, n_models, s))
        )
    return items


# ---------------------------------------------------------------------------------------- the stages
def _read(item: Item) -> Any:
    from ichal.io import read_stacks

    stacks = read_stacks(item.zip_bytes, name=f"phantom-{item.seed}.zip")
    if len(stacks) != 1:
        raise RuntimeError(f"expected one stack, read {len(stacks)}")
    return stacks[0]


def _preprocess(stack: Any) -> Any:
    import torch

    from ichal.preprocessing import to_model_grid, window_channels

    grid, _ = to_model_grid(stack.hu, stack.pixel_spacing, GRID)
    return torch.from_numpy(window_channels(grid))


class Runner:
    """Runs one configuration's stages on the ensemble."""

    def __init__(self, cfg: Config, ensemble: Any, device: Any, args: argparse.Namespace, use_phantom: bool):
        import torch

        self.cfg, self.ensemble, self.device, self.args, self.use_phantom = (
            cfg,
            ensemble,
            device,
            args,
            use_phantom,
        )
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16cl": torch.float16}.get(cfg.precision)
        self.channels_last = cfg.precision == "fp16cl"
        self.output_device = None if cfg.features_on == "gpu" else "cpu"
        self.backend = "torch" if cfg.features_on == "gpu" else "scipy"
        first = (FULL_FRAMES - cfg.frames) // 2
        self.frame_slice = slice(first, first + cfg.frames)
        self.feature_device = device if cfg.features_on == "gpu" else torch.device("cpu")

    def setup(self) -> None:
        import torch

        # predict_frames(channels_last=True) converts the models in place and leaves them so.
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        self.ensemble.to(memory_format=fmt)
        self.ensemble.stride = self.cfg.stride

    def feature_input(self, item: Item, probs: Any) -> Any:
        import torch

        if not self.use_phantom:
            return probs
        key = str(self.feature_device)
        if key not in item.placed:
            item.placed[key] = torch.from_numpy(item.phantom_probs).to(self.feature_device)
        return item.placed[key]  # always the full stack: no scaling needed for the features

    def forward(self, frames: Any) -> Any:
        return self.ensemble.predict(
            frames[self.frame_slice],
            batch_size=self.cfg.batch_size,
            amp_dtype=self.amp_dtype,
            channels_last=self.channels_last,
            output_device=self.output_device,
        )

    def features(self, probs: Any) -> Any:
        from ichal.features.detection import DEFAULT_DETECTION_THRESHOLD
        from ichal.features.morphology import DEFAULT_THRESHOLDS
        from ichal.features.stack_features import stack_features
        from ichal.features.uncertainty import DEFAULT_TOP_K

        return stack_features(
            probs,
            top_k=DEFAULT_TOP_K,
            crop=self.ensemble.crop,
            stride=self.cfg.stride,
            thresholds=DEFAULT_THRESHOLDS,
            detection_threshold=DEFAULT_DETECTION_THRESHOLD,
            backend=self.backend,
        )

    def run_once(self, item: Item) -> tuple[dict[str, float], dict[str, float]]:
        """One stack, stage by stage, each stage synchronised and timed."""
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        stack = _read(item)
        t["read"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        frames = _preprocess(stack)
        t["preprocess"] = time.perf_counter() - t0
        if frames.shape[0] != FULL_FRAMES:
            raise RuntimeError(f"read {frames.shape[0]} frames, expected {FULL_FRAMES}")
        _sync(self.device)
        t0 = time.perf_counter()
        probs = self.forward(frames)
        _sync(self.device)
        t["forward"] = time.perf_counter() - t0
        fprobs = self.feature_input(item, probs)
        _sync(self.device)
        t0 = time.perf_counter()
        feats = self.features(fprobs)
        _sync(self.device)
        t["features"] = time.perf_counter() - t0
        return t, dict(feats.timings_s)

    def warm_up_cpu(self, item: Item) -> None:
        """One crop per model through the network and a one-crop feature pass (a full CPU stack
        would cost minutes)."""
        crop = self.ensemble.crop
        frames = _preprocess(_read(item))[self.frame_slice][:1, :, :crop, :crop]
        probs = self.ensemble.predict(
            frames, batch_size=self.cfg.batch_size, output_device=self.output_device
        )
        self.features(probs)

    def pipelined(self, items: list[Item], n: int, workers: int) -> float:
        """Wall seconds for ``n`` stacks with read + preprocess prefetched on ``workers`` threads."""

        def prep(i: int) -> Any:
            return _preprocess(_read(items[i % len(items)]))

        depth = workers + 1
        _sync(self.device)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending = deque(pool.submit(prep, i) for i in range(min(depth, n)))
            submitted = len(pending)
            done = 0
            while pending:
                frames = pending.popleft().result()
                if submitted < n:
                    pending.append(pool.submit(prep, submitted))
                    submitted += 1
                probs = self.forward(frames)
                self.features(self.feature_input(items[done % len(items)], probs))
                done += 1
        _sync(self.device)
        return time.perf_counter() - t0


# ------------------------------------------------------------------------------- the container path
class MemoryS3:
    """The S3 calls the scorer makes for a versioned study and its overlays, in memory (bench only:
    the container's own cost, without the network)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.lock = threading.Lock()

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        with self.lock:
            self.objects[(Bucket, Key)] = bytes(Body)
        return {"VersionId": "v1"}

    def head_object(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        return {"ContentLength": len(self.objects[(Bucket, Key)])}

    def get_object(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        return {"Body": io.BytesIO(self.objects[(Bucket, Key)])}


def _container_items(args: argparse.Namespace, items: list[Item], n_models: int) -> list[Item]:
    if args.container_frames == FULL_FRAMES:
        return items
    return _make_items(len(items), args.seed, n_models, args.container_frames)


def _bench_container(
    ensemble: Any, device: Any, items: list[Item], args: argparse.Namespace, use_phantom: bool
) -> list[dict[str, Any]]:
    """Requests through ScoringService → StackScorer.handle_request, 1..C at a time (module docstring)."""
    import torch

    from ichal.scoring import ScoringOptions, StackScorer
    from ichal.serve.server import ScoringService

    ensemble.stride = 80
    ensemble.to(memory_format=torch.contiguous_format)
    s3 = MemoryS3()
    scorer = StackScorer(ensemble, ScoringOptions(grid_size=GRID), "bench", s3=s3, device=str(device))
    requests = _scoring_requests(s3, items)
    prepared = [scorer.prepare_stack(_read(item)) for item in items]
    real_predict = ensemble.predict
    if use_phantom:
        _predict_phantom_probs(ensemble, prepared, items)
    try:
        for request in requests[: max(1, args.warmup)]:  # warm-up: kernels, allocator, readers
            scorer.handle_request(request)
        fwd = _forward_only_rate(real_predict, scorer, prepared, device, args.repeats)
        results = []
        for concurrency in args.container_concurrency:
            service = ScoringService(scorer=scorer.handle_request, s3=s3, concurrency=concurrency)
            queue = [requests[i % len(requests)] for i in range(args.container_stacks)]
            _sync(device)
            t0 = time.perf_counter()
            replies = _invoke_concurrently(service, queue, concurrency)
            _sync(device)
            wall = time.perf_counter() - t0
            if len(replies) != args.container_stacks:
                raise RuntimeError(f"{len(replies)} of {args.container_stacks} requests answered")
            stages = _median_stages(replies)
            rate = args.container_stacks / wall
            results.append(
                {
                    "name": f"container {device.type} c{concurrency}",
                    "concurrency": concurrency,
                    "stacks": args.container_stacks,
                    "frames": args.container_frames,
                    "wall_s": wall,
                    "container_stacks_per_s": rate,
                    "forward_only_stacks_per_s": fwd,
                    "container_vs_forward_pct": 100.0 * rate / fwd,
                    "median_stage_s": stages,
                    "status": "ok",
                }
            )
            _log(
                f"    container, {concurrency} at a time: {rate:.3g} stacks/s vs forward-only {fwd:.3g} "
                f"({100.0 * rate / fwd:.0f} %); median per request: "
                + ", ".join(f"{k} {v:.3f}" for k, v in stages.items())
                + " s"
            )
        return results
    finally:
        ensemble.__dict__.pop("predict", None)  # the class's own method again


def _scoring_requests(s3: MemoryS3, items: list[Item]) -> list[dict[str, Any]]:
    """Each item's zip put into the in-memory bucket, and the asynchronous request that names it."""
    requests = []
    for i, item in enumerate(items):
        s3.put_object(Bucket="studies", Key=f"uploads/{i}.zip", Body=item.zip_bytes)
        requests.append(
            {
                "input": f"s3://studies/uploads/{i}.zip",
                "versionId": "v1",
                "overlayPrefix": f"s3://studies/overlays/{i}/",
            }
        )
    return requests


def _predict_phantom_probs(ensemble: Any, prepared: list[Any], items: list[Item]) -> None:
    """The forward pass runs in full; the features then get the phantom probabilities of the same
    stack (random weights give noise heatmaps whose features cost nothing like a trained model's).
    Set on the instance: ``ensemble.__dict__.pop("predict")`` restores the class's method."""
    import torch

    real_predict = ensemble.predict
    by_key = {
        float(p.frames[:, 0].double().sum()): torch.from_numpy(item.phantom_probs)
        for p, item in zip(prepared, items)
    }
    placed: dict[float, Any] = {}

    def predict(frames: Any, **kwargs: Any) -> Any:
        out = real_predict(frames, **kwargs)
        key = float(frames[:, 0].double().sum())
        if key not in placed:
            placed[key] = by_key[key].to(out.device)
        return placed[key]

    ensemble.predict = predict


def _forward_only_rate(
    real_predict: Any, scorer: Any, prepared: list[Any], device: Any, repeats: int
) -> float:
    """Stacks/s of the ensemble's forward pass alone, with the scorer's settings."""
    runs = max(repeats, len(prepared))
    _sync(device)
    t0 = time.perf_counter()
    for i in range(runs):
        real_predict(
            prepared[i % len(prepared)].frames,
            batch_size=scorer.batch_size,
            amp_dtype=scorer.amp_dtype,
            channels_last=scorer.channels_last,
            output_device=None,
        )
    _sync(device)
    return runs / (time.perf_counter() - t0)


def _invoke_concurrently(service: Any, queue: list[dict[str, Any]], concurrency: int) -> list[dict[str, Any]]:
    """The queued requests sent by ``concurrency`` client threads; the replies in the order they came."""
    lock = threading.Lock()
    replies: list[dict[str, Any]] = []

    def client() -> None:
        while True:
            with lock:
                if not queue:
                    return
                request = queue.pop(0)
            reply = service.invoke(json.dumps(request).encode())
            with lock:
                replies.append(reply)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return replies


def _median_stages(replies: list[dict[str, Any]]) -> dict[str, float]:
    """Median seconds per request of each stage the replies report."""
    stages = {
        k: _median([r["stacks"][0]["timings_s"].get(k, 0.0) for r in replies])
        for k in ("preprocess", "forward", "features", "overlays")
    }
    stages["read"] = _median([r["timings_s"]["read"] for r in replies])
    stages["accelerator_wait"] = _median([r["timings_s"]["accelerator_wait"] for r in replies])
    stages["request_total"] = _median([r["timings_s"]["total"] for r in replies])
    return stages


# ------------------------------------------------------------------------------------------ the bench
def _configs(args: argparse.Namespace, device: Any) -> list[Config]:
    dev = str(device)
    if device.type == "cpu":
        frames = max(1, min(args.cpu_frames, FULL_FRAMES))
        return [Config(dev, "fp32", args.cpu_batch_size, s, "cpu", frames) for s in args.cpu_strides]
    if args.quick:
        return [Config(dev, p, b, s, f, FULL_FRAMES) for p, b, s, f in QUICK_CUDA]
    return [
        Config(dev, p, b, s, f, FULL_FRAMES)
        for p in args.precisions
        for b in args.batch_sizes
        for s in args.strides
        for f in args.features
    ]


def _crops_per_stack(stride: int, crop: int) -> int:
    from ichal.windows import window_grid

    return FULL_FRAMES * len(window_grid(GRID, GRID, crop, stride))


def _bench_config(
    cfg: Config, ensemble: Any, device: Any, items: list[Item], args: argparse.Namespace, use_phantom: bool
) -> dict[str, Any]:
    import torch

    runner = Runner(cfg, ensemble, device, args, use_phantom)
    runner.setup()
    scale = FULL_FRAMES / cfg.frames  # forward (and features on the model's output) on cfg.frames frames
    fscale = 1.0 if use_phantom else scale
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        for i in range(args.warmup):
            runner.run_once(items[i % len(items)])
    else:
        for _ in range(args.warmup):
            runner.warm_up_cpu(items[0])
    samples, subs = [], []
    for r in range(args.repeats):
        t, sub = runner.run_once(items[r % len(items)])
        samples.append(t)
        subs.append(sub)
    measured = {k: _median([s[k] for s in samples]) for k in ("read", "preprocess", "forward", "features")}
    per_stack = dict(measured)
    per_stack["forward"] *= scale
    per_stack["features"] *= fscale
    totals = [s["read"] + s["preprocess"] + scale * s["forward"] + fscale * s["features"] for s in samples]
    per_stack["total"] = _median(totals)
    sub_keys = sorted({k for s in subs for k in s})
    features_breakdown = {k: fscale * _median([s.get(k, 0.0) for s in subs]) for k in sub_keys}
    e2e = 1.0 / per_stack["total"]
    fwd = 1.0 / per_stack["forward"]
    result: dict[str, Any] = {
        "name": cfg.name,
        **asdict(cfg),
        "status": "ok",
        "features_backend": runner.backend,
        "features_input": "phantom" if use_phantom else "model",
        "scale_forward": scale,
        "scale_features": fscale,
        "crops_per_stack": _crops_per_stack(cfg.stride, ensemble.crop),
        "per_stack_s": per_stack,
        "measured_s": measured,
        "features_breakdown_s": features_breakdown,
        "samples_s": samples,
        "e2e_stacks_per_s": e2e,
        "forward_only_stacks_per_s": fwd,
        "e2e_vs_forward_pct": 100.0 * e2e / fwd,
        "forward_crops_per_s": _crops_per_stack(cfg.stride, ensemble.crop) / per_stack["forward"],
    }
    n_pipe = args.pipeline_stacks
    if device.type == "cuda" and n_pipe > 0:
        wall = runner.pipelined(items, n_pipe, max(1, args.prefetch_workers))
        result["pipelined_stacks_per_s"] = n_pipe / wall
        result["pipelined_vs_forward_pct"] = 100.0 * (n_pipe / wall) / fwd
    if device.type == "cuda":
        result["peak_gpu_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return result


def _fmt(x: Any, spec: str = ".3f") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return format(x, spec)


def _table(results: list[dict[str, Any]]) -> str:
    head = (
        f"{'configuration':<40} {'read':>6} {'prep':>6} {'fwd':>7} {'feat':>7} {'total':>7} "
        f"{'e2e/s':>7} {'fwd/s':>7} {'e2e%':>6} {'pipe/s':>7} {'pipe%':>6}  status"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        if r.get("status") != "ok":
            lines.append(f"{r['name']:<40} {'':>72}  {r['status']}: {r.get('error', '')}"[:220])
            continue
        s = r["per_stack_s"]
        lines.append(
            f"{r['name']:<40} {_fmt(s['read']):>6} {_fmt(s['preprocess']):>6} {_fmt(s['forward']):>7} "
            f"{_fmt(s['features']):>7} {_fmt(s['total']):>7} {_fmt(r['e2e_stacks_per_s'], '.3g'):>7} "
            f"{_fmt(r['forward_only_stacks_per_s'], '.3g'):>7} {_fmt(r['e2e_vs_forward_pct'], '.0f'):>6} "
            f"{_fmt(r.get('pipelined_stacks_per_s'), '.3g'):>7} {_fmt(r.get('pipelined_vs_forward_pct'), '.0f'):>6}  ok"
        )
    return "\n".join(lines)


def _feature_ratios(results: list[dict[str, Any]]) -> list[str]:
    by_key: dict[tuple, dict[str, dict[str, Any]]] = {}
    for r in results:
        if r.get("status") == "ok" and r["device"].startswith("cuda"):
            by_key.setdefault((r["precision"], r["batch_size"], r["stride"]), {})[r["features_on"]] = r
    out = []
    for (p, b, s), pair in by_key.items():
        if "gpu" in pair and "cpu" in pair:
            g, c = pair["gpu"]["per_stack_s"]["features"], pair["cpu"]["per_stack_s"]["features"]
            out.append(
                f"  {p} bs{b} s{s}: features GPU (torch) {g:.3f} s vs CPU (scipy) {c:.3f} s per stack "
                f"-> CPU/GPU = {c / g:.1f}x; end-to-end {pair['gpu']['e2e_stacks_per_s']:.3g} vs "
                f"{pair['cpu']['e2e_stacks_per_s']:.3g} stacks/s"
            )
    return out


def _write_json(path: str | None, payload: dict[str, Any]) -> None:
    if not path:
        return
    target = Path(path)
    if target.parent and not target.parent.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    os.replace(tmp, target)


def _resolve_device(args: argparse.Namespace) -> Any:
    """The torch device the bench runs on, or None (after saying why) when it cannot run there."""
    import torch

    want = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    want = "cpu" if want == "auto" else want
    device = torch.device(want)
    if device.type == "cuda" and not torch.cuda.is_available():
        _log(
            "bench_scoring: --device cuda but torch.cuda.is_available() is False "
            f"(torch {torch.__version__}); use --device cpu"
        )
        return None
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if device.type not in ("cpu", "cuda"):
        _log(f"bench_scoring: unsupported device {device}")
        return None
    return device


def _complete_args(args: argparse.Namespace, cuda: bool) -> bool:
    """Fills the device-dependent defaults into ``args``; False (after saying why) when a value is out of range."""
    if args.stacks is None:
        args.stacks = 1 if (args.quick and cuda) else 2
    if args.pipeline_stacks is None:
        args.pipeline_stacks = 3 if args.quick else 4
    if args.time_budget is None and cuda:
        args.time_budget = 150.0 if args.quick else 480.0
    if args.container_stacks is None:
        args.container_stacks = (3 if args.quick else 6) if cuda else 0
    problems = [
        (
            args.repeats < 1 or args.stacks < 1 or args.warmup < 0,
            "--repeats and --stacks must be >= 1, --warmup >= 0",
        ),
        (
            args.container_frames < 20 or args.container_frames > FULL_FRAMES or args.container_stacks < 0,
            f"--container-frames must be 20..{FULL_FRAMES} and --container-stacks >= 0",
        ),
        (any(c < 1 for c in args.container_concurrency), "--container-concurrency values must be >= 1"),
        (
            args.container_only and args.container_stacks == 0,
            "--container-only needs --container-stacks N > 0",
        ),
    ]
    for failed, message in problems:
        if failed:
            _log(f"bench_scoring: {message}")
            return False
    return True


def _device_meta(args: argparse.Namespace, device: Any) -> dict[str, Any]:
    """Prepares the device (TF32 and cuDNN settings on a GPU) and describes it and the software."""
    import numpy as np
    import torch

    cuda = device.type == "cuda"
    tf32_state: dict[str, Any] = {}
    if cuda:
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = bool(args.cudnn_benchmark)
        # "tf32": fp32 convolutions and matmuls may use TF32 (cuDNN's default for convolutions).
        try:
            torch.set_float32_matmul_precision("high")
            torch.backends.cudnn.allow_tf32 = True
            tf32_state = {
                "float32_matmul_precision": torch.get_float32_matmul_precision(),
                "cudnn.allow_tf32": bool(torch.backends.cudnn.allow_tf32),
            }
        except Exception as error:  # noqa: BLE001 -- report, never stop the bench for this
            tf32_state = {"error": str(error)}
        torch.zeros(1, device=device).add_(1)
        _sync(device)
    dev_name = torch.cuda.get_device_name(device) if cuda else _cpu_name()

    meta: dict[str, Any] = {
        "device": str(device),
        "device_name": dev_name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cudnn_benchmark": bool(args.cudnn_benchmark) if cuda else None,
        "tf32": tf32_state or None,
        "args": vars(args),
    }
    _log("bench_scoring: scoring path read -> preprocess -> forward -> features")
    _log(
        f"  device {device} ({dev_name}); torch {torch.__version__}"
        + (f", CUDA {torch.version.cuda}, cuDNN {meta['cudnn']}" if cuda else "")
        + f"; torch threads {meta['torch_threads']}, CPU cores {meta['cpu_count']}"
        + (f"; cudnn.benchmark={args.cudnn_benchmark}" if cuda else "")
    )

    return meta


def _load_model(args: argparse.Namespace, device: Any, meta: dict[str, Any]) -> Any:
    """The ensemble on the device: trained weights from ``--model-dir``, else random ones (timing only)."""
    from ichal.model.ensemble import Ensemble, build_ensemble

    t0 = time.perf_counter()
    if args.model_dir:
        ensemble = Ensemble.load(args.model_dir, map_location="cpu")
        weights = f"trained weights from {args.model_dir}"
    else:
        ensemble = build_ensemble(args.ensemble_size, width=args.width, arch=args.arch)
        weights = "RANDOM weights (timing only: the network's cost does not depend on its weights)"
    ensemble = ensemble.to(device).eval()
    n_params = sum(p.numel() for p in ensemble.parameters())
    meta.update(
        model={
            "arch": ensemble.arch,
            "width": ensemble.width,
            "ensemble_size": len(ensemble),
            "crop": ensemble.crop,
            "parameters": n_params,
            "weights": weights,
            "build_s": time.perf_counter() - t0,
        }
    )
    _log(
        f"  model: {len(ensemble)} x {ensemble.arch} PatchFCN, width {ensemble.width}, "
        f"{n_params / 1e6:.1f} M parameters, crop {ensemble.crop}; {weights}"
    )

    return ensemble


def _notes(args: argparse.Namespace, cuda: bool, use_phantom: bool) -> list[str]:
    """What every figure of the run means, printed and written with them."""
    notes = [
        (
            "Per-stack seconds are medians of the timed runs; total = read + preprocess + forward + features "
            "run one after the other (as StackScorer.score_stack does); e2e/s = 1 / total; fwd/s = 1 / forward; "
            "e2e% = e2e/s as a percentage of fwd/s (GPU goal: >= 90 %)."
        ),
        (
            "forward includes the host->device copy of the frames and, for feat=cpu, the device->host copy of "
            "the probabilities; feat=gpu keeps them on the device (Ensemble.predict(output_device=None)) and "
            "runs the torch backend; feat=cpu runs scipy."
        ),
        "read = read_stacks on an in-memory DICOM zip (no S3 download).",
    ]
    if use_phantom:
        notes.append(
            "features timed on probabilities synthesised from the phantom mask (--feature-probs "
            "phantom): random weights give dense noisy heatmaps unlike a trained model's; the "
            "forward still runs on the real input and is timed."
        )
    else:
        notes.append("features timed on the network's own probabilities (--feature-probs model).")
    if not args.model_dir:
        notes.append("RANDOM weights: timings only, the scores mean nothing.")
    if not cuda:
        frames = max(1, min(args.cpu_frames, FULL_FRAMES))
        if frames != FULL_FRAMES:
            notes.append(
                f"CPU: only {frames} of {FULL_FRAMES} frames forwarded per stack; the forward"
                + ("" if use_phantom else " and the features (on its output)")
                + f" SCALED by {FULL_FRAMES}/{frames} = {FULL_FRAMES / frames:g} to a full stack (read, "
                "preprocess"
                + (" and features (phantom probabilities)" if use_phantom else "")
                + " measured on the full 32-frame stack). CPU warm-up: one crop per model."
            )
    else:
        notes.append(
            f"CUDA: {args.warmup} warm-up stack(s) per configuration; pipelined = {args.pipeline_stacks} "
            f"stacks with read+preprocess on {args.prefetch_workers} prefetch thread(s) overlapping "
            "forward+features (the bench's own loop; the container path below measures the server's)."
        )
    if args.container_stacks > 0:
        notes.append(
            "container = the real ScoringService + StackScorer (reading, decoding and overlay upload "
            "outside the accelerator lock; forward + features inside), in-memory S3; % = container "
            "stacks/s over forward-only stacks/s of the same scorer settings on the same stacks."
        )
    return notes


def _run_container(
    args: argparse.Namespace,
    ensemble: Any,
    device: Any,
    items: list[Item],
    use_phantom: bool,
    meta: dict[str, Any],
) -> list[dict[str, Any]]:
    """The real serving code (ScoringService + StackScorer) against forward-only: the figure the acceptance asks for."""
    container: list[dict[str, Any]] = []
    _log(
        f"\ncontainer path: {args.container_stacks} request(s) of {args.container_frames} x {GRID}^2 "
        f"through ScoringService + StackScorer, {' / '.join(map(str, args.container_concurrency))} at a time"
    )
    c0 = time.monotonic()
    try:
        container.extend(
            _bench_container(
                ensemble, device, _container_items(args, items, len(ensemble)), args, use_phantom
            )
        )
    except Exception as error:  # noqa: BLE001 -- report it and go on with the configurations
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        container.append(
            {"name": "container", "status": "failed", "error": f"{type(error).__name__}: {first}"}
        )
        _log(f"    FAILED: {container[-1]['error']}")
        if args.verbose:
            traceback.print_exc()
    meta["container_wall_s"] = time.monotonic() - c0
    return container


def _run_configs(
    args: argparse.Namespace,
    configs: list[Config],
    ensemble: Any,
    device: Any,
    items: list[Item],
    use_phantom: bool,
    started: float,
    payload: dict[str, Any],
) -> None:
    """Each configuration in turn within the time budget, its result appended to ``payload["results"]`` and written."""
    import torch

    results: list[dict[str, Any]] = payload["results"]
    cuda = device.type == "cuda"
    _log(
        f"\n{len(configs)} configuration(s), {args.repeats} timed run(s) each"
        + (f", time budget {args.time_budget:.0f} s" if args.time_budget else "")
    )
    last_cost = 0.0
    for i, cfg in enumerate(configs, 1):
        elapsed = time.monotonic() - started
        if args.time_budget and elapsed + last_cost > args.time_budget:
            results.append(
                {
                    "name": cfg.name,
                    **asdict(cfg),
                    "status": "skipped",
                    "error": f"time budget {args.time_budget:.0f} s ({elapsed:.0f} s elapsed)",
                }
            )
            _log(f"[{i}/{len(configs)}] {cfg.name}: SKIPPED (time budget)")
            continue
        c0 = time.monotonic()
        _log(f"[{i}/{len(configs)}] {cfg.name} ...")
        try:
            r = _bench_config(cfg, ensemble, device, items, args, use_phantom)
            s = r["per_stack_s"]
            _log(
                f"    read {s['read']:.3f}  prep {s['preprocess']:.3f}  fwd {s['forward']:.3f}  feat "
                f"{s['features']:.3f}  total {s['total']:.3f} s/stack | e2e {r['e2e_stacks_per_s']:.3g} "
                f"vs fwd-only {r['forward_only_stacks_per_s']:.3g} stacks/s ({r['e2e_vs_forward_pct']:.0f} %)"
                + (
                    f" | pipelined {r['pipelined_stacks_per_s']:.3g} stacks/s "
                    f"({r['pipelined_vs_forward_pct']:.0f} %)"
                    if "pipelined_stacks_per_s" in r
                    else ""
                )
            )
        except Exception as error:  # noqa: BLE001 -- report the configuration and go on
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            r = {
                "name": cfg.name,
                **asdict(cfg),
                "status": "failed",
                "error": f"{type(error).__name__}: {first}",
            }
            _log(f"    FAILED: {r['error']}")
            if args.verbose:
                traceback.print_exc()
            if cuda:
                # A broken context fails the next configurations too; nothing more to clean up then.
                with contextlib.suppress(Exception):
                    torch.cuda.synchronize(device)
                    torch.cuda.empty_cache()
        r["wall_s"] = time.monotonic() - c0
        last_cost = r["wall_s"]
        results.append(r)
        _write_json(args.out, payload)


def _report(payload: dict[str, Any]) -> None:
    """The results table, the container figures, the GPU-vs-CPU feature ratios and what did not run."""
    results, container = payload["results"], payload["container"]
    if results:
        _log("\nResults (seconds per stack of 32 frames; stacks/s):")
        _log(_table(results))
    for r in container:
        if r.get("status") == "ok":
            _log(
                f"{r['name']}: {r['container_stacks_per_s']:.3g} stacks/s = {r['container_vs_forward_pct']:.0f} % "
                f"of forward-only {r['forward_only_stacks_per_s']:.3g} ({r['stacks']} requests, {r['frames']} frames)"
            )
    ratios = _feature_ratios(results)
    if ratios:
        _log("\nFeatures on the GPU vs on the CPU:")
        for line in ratios:
            _log(line)
    failed = [r for r in results if r["status"] != "ok"]
    if failed:
        _log("\nConfigurations that did not run:")
        for r in failed:
            _log(f"  {r['name']}: {r['status']}: {r.get('error', '')}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.monotonic()
    try:
        import torch

        import ichal.model.ensemble
    except ImportError as error:
        _log(f"bench_scoring: cannot import what the scoring path needs: {error}")
        return 2
    try:
        import ichal.io
        import ichal.phantoms  # noqa: F401
    except ImportError as error:
        _log(
            f"bench_scoring: cannot import the readers/phantoms ({error}); they need pydicom and nibabel "
            "(pure Python: put them on PYTHONPATH, e.g. from model-container/.venv's site-packages)"
        )
        return 2

    if args.threads:
        torch.set_num_threads(args.threads)
    device = _resolve_device(args)
    if device is None or not _complete_args(args, device.type == "cuda"):
        return 2
    cuda = device.type == "cuda"
    meta = _device_meta(args, device)
    ensemble = _load_model(args, device, meta)

    use_phantom = args.feature_probs == "phantom" or (args.feature_probs == "auto" and not args.model_dir)
    t0 = time.perf_counter()
    items = _make_items(args.stacks, args.seed, len(ensemble))
    meta["phantoms"] = {
        "stacks": args.stacks,
        "frames": FULL_FRAMES,
        "size": GRID,
        "zip_mb": [round(len(i.zip_bytes) / 1e6, 2) for i in items],
        "setup_s": time.perf_counter() - t0,
    }
    _log(
        f"  phantoms: {args.stacks} synthetic stack(s) of {FULL_FRAMES} x {GRID}^2, DICOM zip in memory "
        f"({', '.join(f'{len(i.zip_bytes) / 1e6:.1f} MB' for i in items)}), read back through read_stacks"
    )

    notes = _notes(args, cuda, use_phantom)
    for n in notes:
        _log(f"  note: {n}")

    configs = [] if args.container_only else _configs(args, device)
    payload: dict[str, Any] = {"meta": meta, "notes": notes, "container": [], "results": []}
    if args.container_stacks > 0:
        payload["container"] = _run_container(args, ensemble, device, items, use_phantom, meta)
        _write_json(args.out, payload)
    _run_configs(args, configs, ensemble, device, items, use_phantom, started, payload)
    _report(payload)
    meta["wall_s"] = time.monotonic() - started
    _log(f"\nTotal wall time {meta['wall_s']:.0f} s.")
    _write_json(args.out, payload)
    if args.out:
        _log(f"JSON written to {args.out}")
    return 0 if any(r["status"] == "ok" for r in payload["results"] + payload["container"]) else 1


if __name__ == "__main__":
    sys.exit(main())
