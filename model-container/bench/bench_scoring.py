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

The parts: bench_common.py (the phantom stacks, the read and preprocess stages, helpers),
bench_configurations.py (the configurations, timed stage by stage), bench_container.py (the container
path); this file reads the options, runs them and reports.

Any Python with CUDA PyTorch, numpy, scipy, scikit-image, pydicom and nibabel will do in place of
``.venv/bin/python``. Results are printed as a table and, with ``--out FILE``, written as JSON
(rewritten after every configuration, so a run cut short still leaves what it measured).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from bench_common import FULL_FRAMES, GRID, log, make_items, sync, write_json
from bench_configurations import configurations_for, run_configurations
from bench_container import run_container

_ROOT = Path(__file__).resolve().parents[1]  # model-container/
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

PRECISIONS = ("tf32", "bf16", "fp16cl")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench_scoring.py",
        description="Per-stage timing (read, preprocess, forward, features) and stacks/s of the "
        "scoring path on phantom DICOM stacks. See the module docstring for details.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_model_options(p)
    _add_stack_options(p)
    _add_configuration_options(p)
    _add_container_options(p)
    _add_run_options(p)
    return p


def _add_model_options(p: argparse.ArgumentParser) -> None:
    """The device and the ensemble timed."""
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


def _add_stack_options(p: argparse.ArgumentParser) -> None:
    """The phantom stacks and how often each configuration runs."""
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


def _add_configuration_options(p: argparse.ArgumentParser) -> None:
    """The configurations: CUDA and CPU settings, what the features see, the pipelined run."""
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


def _add_container_options(p: argparse.ArgumentParser) -> None:
    """The container path."""
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


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """Threads, time budget and output."""
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


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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


def _resolve_device(args: argparse.Namespace) -> Any:
    """The torch device the bench runs on, or None (after saying why) when it cannot run there."""
    import torch

    want = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    want = "cpu" if want == "auto" else want
    device = torch.device(want)
    if device.type == "cuda" and not torch.cuda.is_available():
        log(
            "bench_scoring: --device cuda but torch.cuda.is_available() is False "
            f"(torch {torch.__version__}); use --device cpu"
        )
        return None
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if device.type not in ("cpu", "cuda"):
        log(f"bench_scoring: unsupported device {device}")
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
            log(f"bench_scoring: {message}")
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
        sync(device)
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
    log("bench_scoring: scoring path read -> preprocess -> forward -> features")
    log(
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
    log(
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


def _report(payload: dict[str, Any]) -> None:
    """The results table, the container figures, the GPU-vs-CPU feature ratios and what did not run."""
    results, container = payload["results"], payload["container"]
    if results:
        log("\nResults (seconds per stack of 32 frames; stacks/s):")
        log(_table(results))
    for r in container:
        if r.get("status") == "ok":
            log(
                f"{r['name']}: {r['container_stacks_per_s']:.3g} stacks/s = {r['container_vs_forward_pct']:.0f} % "
                f"of forward-only {r['forward_only_stacks_per_s']:.3g} ({r['stacks']} requests, {r['frames']} frames)"
            )
    ratios = _feature_ratios(results)
    if ratios:
        log("\nFeatures on the GPU vs on the CPU:")
        for line in ratios:
            log(line)
    failed = [r for r in results if r["status"] != "ok"]
    if failed:
        log("\nConfigurations that did not run:")
        for r in failed:
            log(f"  {r['name']}: {r['status']}: {r.get('error', '')}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.monotonic()
    try:
        import torch

        import ichal.model.ensemble
    except ImportError as error:
        log(f"bench_scoring: cannot import what the scoring path needs: {error}")
        return 2
    try:
        import ichal.io
        import ichal.phantoms  # noqa: F401
    except ImportError as error:
        log(
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
    items = make_items(args.stacks, args.seed, len(ensemble))
    meta["phantoms"] = {
        "stacks": args.stacks,
        "frames": FULL_FRAMES,
        "size": GRID,
        "zip_mb": [round(len(i.zip_bytes) / 1e6, 2) for i in items],
        "setup_s": time.perf_counter() - t0,
    }
    log(
        f"  phantoms: {args.stacks} synthetic stack(s) of {FULL_FRAMES} x {GRID}^2, DICOM zip in memory "
        f"({', '.join(f'{len(i.zip_bytes) / 1e6:.1f} MB' for i in items)}), read back through read_stacks"
    )

    notes = _notes(args, cuda, use_phantom)
    for n in notes:
        log(f"  note: {n}")

    configs = [] if args.container_only else configurations_for(args, device)
    payload: dict[str, Any] = {"meta": meta, "notes": notes, "container": [], "results": []}
    if args.container_stacks > 0:
        payload["container"] = run_container(args, ensemble, device, items, use_phantom, meta)
        write_json(args.out, payload)
    run_configurations(args, configs, ensemble, device, items, use_phantom, started, payload)
    _report(payload)
    meta["wall_s"] = time.monotonic() - started
    log(f"\nTotal wall time {meta['wall_s']:.0f} s.")
    write_json(args.out, payload)
    if args.out:
        log(f"JSON written to {args.out}")
    return 0 if any(r["status"] == "ok" for r in payload["results"] + payload["container"]) else 1


if __name__ == "__main__":
    sys.exit(main())
