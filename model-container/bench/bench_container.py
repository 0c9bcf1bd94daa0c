"""The container path: requests through the real ScoringService and StackScorer against an in-memory S3,
compared with the forward pass alone. The bench and its measurements are described in bench_scoring.py."""

from __future__ import annotations

import argparse
import io
import json
import threading
import time
import traceback
from typing import Any

from bench_common import FULL_FRAMES, GRID, Item, log, make_items, median, read_item, sync


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
    return make_items(len(items), args.seed, n_models, args.container_frames)


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
    prepared = [scorer.prepare_stack(read_item(item)) for item in items]
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
            sync(device)
            t0 = time.perf_counter()
            replies = _invoke_concurrently(service, queue, concurrency)
            sync(device)
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
            log(
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
    sync(device)
    t0 = time.perf_counter()
    for i in range(runs):
        real_predict(
            prepared[i % len(prepared)].frames,
            batch_size=scorer.batch_size,
            amp_dtype=scorer.amp_dtype,
            channels_last=scorer.channels_last,
            output_device=None,
        )
    sync(device)
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
        k: median([r["stacks"][0]["timings"].get(k, 0.0) for r in replies])
        for k in ("preprocess", "forward", "features", "overlays")
    }
    stages["read"] = median([r["timings"]["read"] for r in replies])
    stages["accelerator_wait"] = median([r["timings"]["accelerator_wait"] for r in replies])
    stages["request_total"] = median([r["timings"]["total"] for r in replies])
    return stages


def run_container(
    args: argparse.Namespace,
    ensemble: Any,
    device: Any,
    items: list[Item],
    use_phantom: bool,
    meta: dict[str, Any],
) -> list[dict[str, Any]]:
    """The real serving code (ScoringService + StackScorer) against forward-only: the figure the acceptance asks for."""
    container: list[dict[str, Any]] = []
    log(
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
        log(f"    FAILED: {container[-1]['error']}")
        if args.verbose:
            traceback.print_exc()
    meta["container_wall_s"] = time.monotonic() - c0
    return container
