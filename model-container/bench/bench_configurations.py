"""The bench's configurations (device, precision, batch size, stride, where the features run) and the
timing of each one stage by stage. The bench and its measurements are described in bench_scoring.py."""

from __future__ import annotations

import argparse
import contextlib
import time
import traceback
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from bench_common import FULL_FRAMES, GRID, Item, log, median, preprocess, read_item, sync, write_json

QUICK_CUDA = (  # (precision, batch size, stride, features on): most informative first
    ("fp16cl", 384, 80, "gpu"),
    ("fp16cl", 384, 80, "cpu"),
    ("fp16cl", 384, 160, "gpu"),
    ("fp16cl", 64, 80, "gpu"),
    ("bf16", 384, 80, "gpu"),
    ("tf32", 384, 80, "gpu"),
)


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
        stack = read_item(item)
        t["read"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        frames = preprocess(stack)
        t["preprocess"] = time.perf_counter() - t0
        if frames.shape[0] != FULL_FRAMES:
            raise RuntimeError(f"read {frames.shape[0]} frames, expected {FULL_FRAMES}")
        sync(self.device)
        t0 = time.perf_counter()
        probs = self.forward(frames)
        sync(self.device)
        t["forward"] = time.perf_counter() - t0
        fprobs = self.feature_input(item, probs)
        sync(self.device)
        t0 = time.perf_counter()
        feats = self.features(fprobs)
        sync(self.device)
        t["features"] = time.perf_counter() - t0
        return t, dict(feats.timings_s)

    def warm_up_cpu(self, item: Item) -> None:
        """One crop per model through the network and a one-crop feature pass (a full CPU stack
        would cost minutes)."""
        crop = self.ensemble.crop
        frames = preprocess(read_item(item))[self.frame_slice][:1, :, :crop, :crop]
        probs = self.ensemble.predict(
            frames, batch_size=self.cfg.batch_size, output_device=self.output_device
        )
        self.features(probs)

    def pipelined(self, items: list[Item], n: int, workers: int) -> float:
        """Wall seconds for ``n`` stacks with read + preprocess prefetched on ``workers`` threads."""

        def prep(i: int) -> Any:
            return preprocess(read_item(items[i % len(items)]))

        depth = workers + 1
        sync(self.device)
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
        sync(self.device)
        return time.perf_counter() - t0


def configurations_for(args: argparse.Namespace, device: Any) -> list[Config]:
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
    measured = {k: median([s[k] for s in samples]) for k in ("read", "preprocess", "forward", "features")}
    per_stack = dict(measured)
    per_stack["forward"] *= scale
    per_stack["features"] *= fscale
    totals = [s["read"] + s["preprocess"] + scale * s["forward"] + fscale * s["features"] for s in samples]
    per_stack["total"] = median(totals)
    sub_keys = sorted({k for s in subs for k in s})
    features_breakdown = {k: fscale * median([s.get(k, 0.0) for s in subs]) for k in sub_keys}
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


def run_configurations(
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
    results: list[dict[str, Any]] = payload["results"]
    log(
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
            log(f"[{i}/{len(configs)}] {cfg.name}: SKIPPED (time budget)")
            continue
        c0 = time.monotonic()
        log(f"[{i}/{len(configs)}] {cfg.name} ...")
        try:
            r = _bench_config(cfg, ensemble, device, items, args, use_phantom)
            log(_result_line(r))
        except Exception as error:  # noqa: BLE001 -- report the configuration and go on
            r = _failed(cfg, error, args, device)
        r["wall_s"] = time.monotonic() - c0
        last_cost = r["wall_s"]
        results.append(r)
        write_json(args.out, payload)


def _result_line(r: dict[str, Any]) -> str:
    """A configuration's per-stack seconds and stacks/s, as printed after it ran."""
    s = r["per_stack_s"]
    return (
        f"    read {s['read']:.3f}  prep {s['preprocess']:.3f}  fwd {s['forward']:.3f}  feat "
        f"{s['features']:.3f}  total {s['total']:.3f} s/stack | e2e {r['e2e_stacks_per_s']:.3g} "
        f"vs fwd-only {r['forward_only_stacks_per_s']:.3g} stacks/s ({r['e2e_vs_forward_pct']:.0f} %)"
        + (
            f" | pipelined {r['pipelined_stacks_per_s']:.3g} stacks/s ({r['pipelined_vs_forward_pct']:.0f} %)"
            if "pipelined_stacks_per_s" in r
            else ""
        )
    )


def _failed(cfg: Config, error: Exception, args: argparse.Namespace, device: Any) -> dict[str, Any]:
    """The failed configuration's result, reported; on CUDA the device synchronised and its cache emptied."""
    import torch

    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    r = {
        "name": cfg.name,
        **asdict(cfg),
        "status": "failed",
        "error": f"{type(error).__name__}: {first}",
    }
    log(f"    FAILED: {r['error']}")
    if args.verbose:
        traceback.print_exc()
    if device.type == "cuda":
        # A broken context fails the next configurations too; nothing more to clean up then.
        with contextlib.suppress(Exception):
            torch.cuda.synchronize(device)
            torch.cuda.empty_cache()
    return r
