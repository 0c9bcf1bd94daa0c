"""The real scorer behind the SageMaker HTTP contract: a study in S3 (moto server) → JSON scores,
asynchronous results and overlays in S3; every kind of bad study → 4xx with its reason code, and
the server keeps serving. Uses a tiny untrained ensemble: this checks the contract, not accuracy."""

from __future__ import annotations

import gzip
import http.client
import io
import json
import threading
import time
import zipfile

import nibabel as nib
import numpy as np
import pytest

from ichal.features.morphology import labeling_features
from ichal.model.ensemble import build_ensemble
from ichal.phantoms import generate_stack, nifti_affine, write_dicom_zip
from ichal.preprocessing import from_model_grid, plan_model_grid
from ichal.scoring import StackScorer
from ichal.serve.s3_location import S3Location
from ichal.serve.server import ScoringService, make_server
from ichal.windows import window_starts

PLANTED_NAME = "Doe^Jane^Planted"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("model")
    ensemble = build_ensemble(2, width=0.125, crop=32, stride=16, seeds=(3, 4))
    ensemble.save(
        directory,
        manifest_extra={
            "grid_size": 64,
            "top_k": 20,
            "thresholds": [0.3, 0.5, 0.7],
            "detection_threshold": 0.5,
        },
    )
    return directory


def dicom_zip(seed=5, **kwargs) -> bytes:
    buffer = io.BytesIO()
    write_dicom_zip(generate_stack(seed, size=64, frames=kwargs.pop("frames", 24)), buffer, **kwargs)
    return buffer.getvalue()


@pytest.fixture
def endpoint(local_aws, model_dir):
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket="studies")
    s3.put_bucket_versioning(Bucket="studies", VersioningConfiguration={"Status": "Enabled"})
    scorer = StackScorer.from_model_dir(model_dir, s3=s3, device="cpu")
    service = ScoringService(
        scorer=scorer.handle_request, s3=s3, async_output=S3Location("studies", "async-out/")
    )
    httpd = make_server(service, host="127.0.0.1", port=0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1], s3, scorer
    httpd.shutdown()
    httpd.server_close()


def post(port, path, body=b"", headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    connection.request(
        "POST", path, body=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    response = connection.getresponse()
    payload = json.loads(response.read())
    connection.close()
    return response.status, payload, dict(response.getheaders())


def test_scores_a_dicom_study_from_s3_with_its_version_and_writes_overlays(endpoint):
    port, s3, scorer = endpoint
    put = s3.put_object(Bucket="studies", Key="uploads/study one.zip", Body=dicom_zip())
    status, body, _ = post(
        port,
        "/endpoints/ich-scoring/invocations",
        {
            "input": "s3://studies/uploads/study one.zip",
            "versionId": put["VersionId"],
            "overlayPrefix": "s3://studies/overlays/s1/",
        },
    )
    assert status == 200, body
    assert body["modelVersion"] == scorer.model_version
    (stack,) = body["stacks"]
    assert stack["frames"] == 24 and stack["topK"] == 20
    assert stack["stackUncertainty"] >= 0 and 0 <= stack["stackScore"] <= 1
    assert [p["threshold"] for p in stack["perThreshold"]] == [0.3, 0.5, 0.7]
    assert len(stack["frameScores"]) == 24
    assert len(stack["contentSha256"]) == 64 and int(stack["contentSha256"], 16) >= 0
    # The mask grid: [frames, rows, columns] and the RAS affine the phantom was written at.
    assert stack["geometry"]["shape"] == [24, 64, 64]
    np.testing.assert_allclose(
        stack["geometry"]["affine"], nifti_affine(generate_stack(5, size=64, frames=24)), atol=1e-4
    )
    assert {"preprocess", "forward", "features"} <= set(stack["timings"])
    overlay = S3Location.parse(stack["overlays"])
    with np.load(io.BytesIO(s3.get_object(Bucket=overlay.bucket, Key=overlay.key)["Body"].read())) as arrays:
        assert arrays["mean_heatmap"].shape == (24, 64, 64) and arrays["mean_heatmap"].dtype == np.uint8
        assert arrays["js_divergence"].shape == (24, 64, 64)
        heatmap = arrays["mean_heatmap"].copy()
    # The viewer's volumes: CT and overlays on the stack's own grid, the mask grid, read back by nibabel.
    phantom = generate_stack(5, size=64, frames=24)
    assert sorted(stack["viewer"]) == ["ct", "heatmap", "js"]

    def volume(name):
        where = S3Location.parse(stack["viewer"][name])
        raw = s3.get_object(Bucket=where.bucket, Key=where.key)["Body"].read()
        image = nib.Nifti1Image.from_bytes(gzip.decompress(raw))
        np.testing.assert_allclose(image.affine, stack["geometry"]["affine"], atol=1e-4)
        assert bytes(image.header["descrip"]).strip(b"\0") == b""
        return np.asarray(image.dataobj).transpose(2, 1, 0)  # → [frames, rows, columns]

    ct = volume("ct")
    assert ct.dtype == np.int16 and ct.shape == (24, 64, 64)
    assert np.max(np.abs(ct.astype(int) - np.clip(np.rint(phantom.hu), -1024, 3071))) <= 1
    transform = plan_model_grid((64, 64), phantom.pixel_spacing, 64)
    expected = np.clip(np.rint(from_model_grid(heatmap.astype(np.float32), transform, order=1)), 0, 255)
    np.testing.assert_array_equal(volume("heatmap"), expected.astype(np.uint8))
    assert volume("js").dtype == np.uint8
    # The worklist's key-frame thumbnails, composited over the CT on the same grid.
    thumbs = S3Location.parse(stack["thumbnails"])
    manifest = json.loads(s3.get_object(Bucket=thumbs.bucket, Key=thumbs.key)["Body"].read())
    assert len(manifest["keyFrames"]) == 3 and manifest["frames"] == 24
    for key in manifest["keyFrames"]:
        png = s3.get_object(Bucket=thumbs.bucket, Key=f"overlays/s1/{key['heatmap']}")
        assert png["ContentType"] == "image/png" and png["Body"].read()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_study_with_two_series_gives_two_stacks(endpoint):
    port, s3, _ = endpoint
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as outer:
        for seed in (7, 8):
            with zipfile.ZipFile(io.BytesIO(dicom_zip(seed))) as inner:
                for info in inner.infolist():
                    outer.writestr(f"s{seed}/{info.filename}", inner.read(info))
    s3.put_object(Bucket="studies", Key="uploads/two.zip", Body=buffer.getvalue())
    status, body, _ = post(port, "/invocations", {"input": "s3://studies/uploads/two.zip"})
    assert status == 200 and len(body["stacks"]) == 2
    assert len({s["seriesUid"] for s in body["stacks"]}) == 2
    # Each series keeps its own content key (the records' duplicate key, ichal.io.stack.CtStack.content_sha256).
    assert len({s["contentSha256"] for s in body["stacks"]}) == 2


def test_async_invocation_through_s3(endpoint):
    port, s3, _ = endpoint
    s3.put_object(Bucket="studies", Key="uploads/a.zip", Body=dicom_zip(9))
    s3.put_object(
        Bucket="studies",
        Key="requests/a.json",
        Body=json.dumps({"input": "s3://studies/uploads/a.zip"}).encode(),
    )
    status, _body, headers = post(
        port,
        "/endpoints/ich-scoring/async-invocations",
        headers={"X-Amzn-SageMaker-InputLocation": "s3://studies/requests/a.json"},
    )
    assert status == 202
    out = S3Location.parse(headers["X-Amzn-SageMaker-OutputLocation"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = s3.list_objects_v2(Bucket=out.bucket, Prefix=out.key).get("Contents", [])
        if listed:
            break
        time.sleep(0.1)
    result = json.loads(s3.get_object(Bucket=out.bucket, Key=out.key)["Body"].read())
    assert len(result["stacks"]) == 1


def _npz(hu):
    buffer = io.BytesIO()
    np.savez(buffer, hu=hu, pixel_spacing=np.array([0.5, 0.5]))
    return buffer.getvalue()


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("frame.dcm", b"\0" * (8 * 1024 * 1024))
    return buffer.getvalue()


def _truncated() -> bytes:
    source = zipfile.ZipFile(io.BytesIO(dicom_zip(11)))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i, info in enumerate(source.infolist()):
            data = source.read(info)
            archive.writestr(info.filename, data[: len(data) // 2] if i == 3 else data)
    return buffer.getvalue()


def _geometry(k, ds):
    if k == 5:
        ds.PixelSpacing = [0.9, 0.9]


BAD_STUDIES = {
    "PHI_PRESENT": lambda: dicom_zip(12, extra_tags={"PatientName": PLANTED_NAME}),
    "WRONG_MODALITY": lambda: dicom_zip(13, extra_tags={"Modality": "MR"}),
    "TOO_FEW_FRAMES": lambda: dicom_zip(14, frames=8),
    "INCONSISTENT_GEOMETRY": lambda: dicom_zip(15, mutate=_geometry),
    "CORRUPT_DICOM": _truncated,
    "UNREADABLE_ARCHIVE": lambda: b"this is not an archive",
    "ZIP_BOMB": _zip_bomb,
    "NON_FINITE_VOXELS": lambda: _npz(np.full((24, 64, 64), np.nan, dtype=np.float32)),
    "LOSSY_COMPRESSION": lambda: dicom_zip(17, extra_tags={"LossyImageCompression": "01"}),
}


def test_bad_studies_get_a_4xx_reason_and_the_server_keeps_serving(endpoint):
    port, s3, _ = endpoint
    for code, make in sorted(BAD_STUDIES.items()):
        s3.put_object(Bucket="studies", Key=f"uploads/{code}.bin", Body=make())
        status, body, _ = post(port, "/invocations", {"input": f"s3://studies/uploads/{code}.bin"})
        assert (status, body["code"]) == (422, code), body
        assert PLANTED_NAME not in json.dumps(body)
    s3.put_object(Bucket="studies", Key="uploads/good.zip", Body=dicom_zip(16))
    assert post(port, "/invocations", {"input": "s3://studies/uploads/good.zip"})[0] == 200


@pytest.mark.parametrize(
    "request_body,status,code",
    [
        ({"input": "s3://studies/uploads/missing.zip"}, 404, "INPUT_NOT_FOUND"),
        ({"input": "/etc/passwd"}, 400, "BAD_REQUEST"),
        ({"input": "s3://studies/x.zip", "versionId": 7}, 400, "BAD_REQUEST"),
        ({"input": "s3://studies/x.zip", "overlayPrefix": "http://x"}, 400, "BAD_REQUEST"),
    ],
)
def test_bad_requests(endpoint, request_body, status, code):
    port, _, _ = endpoint
    got_status, body, _ = post(port, "/invocations", request_body)
    assert (got_status, body["code"]) == (status, code)


# ---- per-request K and thresholds (the institution config's topK / thresholds, sent by ingest) ------
def _spy_features(monkeypatch, scorer):
    """Keeps the features (JS map, mean heatmap) of every stack the scorer scores."""
    captured = []
    original = scorer.compute_stack

    def spy(prepared, options=None):
        result, features = original(prepared, options)
        captured.append(features)
        return result, features

    monkeypatch.setattr(scorer, "compute_stack", spy)
    return captured


def _top_k_mean_by_sorting(js_map: np.ndarray, crop: int, stride: int, k: int) -> float:
    """V from scratch: mean JS of each sliding-window patch (explicit slices), sorted, top-k mean."""
    frames, height, width = js_map.shape
    means = [
        float(js_map[f, top : top + crop, left : left + crop].astype(np.float64).mean())
        for f in range(frames)
        for top in window_starts(height, crop, stride)
        for left in window_starts(width, crop, stride)
    ]
    return float(np.mean(np.sort(np.asarray(means))[::-1][:k]))


def test_a_requests_top_k_and_thresholds_apply_to_that_request_only(endpoint, monkeypatch):
    port, s3, scorer = endpoint
    captured = _spy_features(monkeypatch, scorer)
    put = s3.put_object(Bucket="studies", Key="uploads/k.zip", Body=dicom_zip(21))
    request = {"input": "s3://studies/uploads/k.zip", "versionId": put["VersionId"]}

    status, body, _ = post(port, "/invocations", {**request, "topK": 3, "thresholds": [0.4, 0.6]})
    assert status == 200, body
    (stack,) = body["stacks"]
    assert stack["topK"] == 3 and len(stack["topPatches"]) == 3
    js = captured[-1].js_map.detach().float().cpu().numpy()
    expected = _top_k_mean_by_sorting(js, scorer.ensemble.crop, scorer.ensemble.stride, 3)
    assert stack["stackUncertainty"] == pytest.approx(expected, rel=1e-6, abs=1e-12)
    assert [p["threshold"] for p in stack["perThreshold"]] == [0.4, 0.6]
    reference = labeling_features(captured[-1].mean_heatmap, (0.4, 0.6), "scipy").per_threshold
    got = stack["perThreshold"]
    assert [p["boundaryLength"] for p in got] == pytest.approx([p.boundary_length for p in reference])
    assert [p["components"] for p in got] == [p.components for p in reference]
    assert stack["boundaryLength"] == pytest.approx(np.mean([p["boundaryLength"] for p in got]))

    # The next request without them gets the manifest's K = 20 and thresholds again: nothing was shared.
    status, body, _ = post(port, "/invocations", request)
    assert status == 200, body
    (plain,) = body["stacks"]
    assert plain["topK"] == 20
    assert [p["threshold"] for p in plain["perThreshold"]] == [0.3, 0.5, 0.7]
    js = captured[-1].js_map.detach().float().cpu().numpy()
    assert plain["stackUncertainty"] == pytest.approx(
        _top_k_mean_by_sorting(js, scorer.ensemble.crop, scorer.ensemble.stride, 20), rel=1e-6, abs=1e-12
    )
    assert scorer.options.top_k == 20 and scorer.options.thresholds == (0.3, 0.5, 0.7)


def test_a_top_k_above_the_patch_count_uses_every_patch(endpoint):
    port, s3, _ = endpoint
    s3.put_object(Bucket="studies", Key="uploads/all.zip", Body=dicom_zip(22))
    status, body, _ = post(port, "/invocations", {"input": "s3://studies/uploads/all.zip", "topK": 10**6})
    assert status == 200, body
    # 64² grid, 32² crops every 16 px: 3 × 3 patches on each of 24 frames.
    assert body["stacks"][0]["topK"] == 24 * 3 * 3


INVALID_SCORING_PARAMETERS = [
    ("topK", 0),
    ("topK", -1),
    ("topK", "x"),
    ("topK", 2.5),
    ("topK", True),
    ("thresholds", [0.6, 0.4]),
    ("thresholds", [1.5]),
    ("thresholds", [0.3, 0.3]),
    ("thresholds", [0.0, 0.5]),
    ("thresholds", []),
    ("thresholds", "x"),
    ("thresholds", [0.3, "x"]),
    ("allowedPrivateCreators", "GEMS_IDEN_01"),
    ("allowedPrivateCreators", {"GEMS_IDEN_01": True}),
    ("allowedPrivateCreators", [7]),
    ("allowedPrivateCreators", [""]),
    ("allowedPrivateCreators", ["   "]),
    ("allowedPrivateCreators", ["A\\B"]),
    ("allowedPrivateCreators", ["tab\there"]),
    ("allowedPrivateCreators", ["x" * 65]),
    ("allowedPrivateCreators", ["GEMS_IDEN_01"] * 101),
]


def test_invalid_scoring_parameters_get_a_400_naming_the_field_and_the_server_keeps_serving(endpoint):
    port, s3, _ = endpoint
    s3.put_object(Bucket="studies", Key="uploads/fine.zip", Body=dicom_zip(23))
    for field, value in INVALID_SCORING_PARAMETERS:
        status, body, _ = post(port, "/invocations", {"input": "s3://studies/uploads/fine.zip", field: value})
        assert (status, body["code"]) == (400, "BAD_REQUEST"), (field, value, body)
        assert f'"{field}"' in body["reason"], (field, value, body)
    good = {"input": "s3://studies/uploads/fine.zip", "topK": 5, "thresholds": [0.5]}
    status, body, _ = post(port, "/invocations", good)
    assert status == 200, body
    assert body["stacks"][0]["topK"] == 5


def test_private_elements_pass_only_for_the_creators_the_request_allows(endpoint):
    port, s3, _ = endpoint

    def private(k, ds):
        ds.private_block(0x0009, "ACME_CT_1.0", create=True).add_new(0x01, "LO", PLANTED_NAME)

    s3.put_object(Bucket="studies", Key="uploads/private.zip", Body=dicom_zip(24, mutate=private))
    request = {"input": "s3://studies/uploads/private.zip"}
    status, body, _ = post(port, "/invocations", request)
    assert (status, body["code"]) == (422, "PHI_PRESENT") and body["reason"].endswith(": (0009,1001)")
    assert PLANTED_NAME not in json.dumps(body)
    status, body, _ = post(port, "/invocations", {**request, "allowedPrivateCreators": ["OTHER"]})
    assert (status, body["code"]) == (422, "PHI_PRESENT")
    status, body, _ = post(port, "/invocations", {**request, "allowedPrivateCreators": ["ACME_CT_1.0"]})
    assert status == 200, body
    # Nothing is shared between requests: the next one without the list is refused again.
    assert post(port, "/invocations", request)[0] == 422


def test_an_invalid_top_k_in_an_async_request_is_written_to_the_failure_location(endpoint):
    port, s3, _ = endpoint
    request = {"input": "s3://studies/uploads/x.zip", "topK": 0}
    s3.put_object(Bucket="studies", Key="requests/bad-k.json", Body=json.dumps(request).encode())
    location = {"X-Amzn-SageMaker-InputLocation": "s3://studies/requests/bad-k.json"}
    status, _, headers = post(port, "/endpoints/ich-scoring/async-invocations", headers=location)
    assert status == 202
    failure = S3Location.parse(headers["X-Amzn-SageMaker-FailureLocation"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if s3.list_objects_v2(Bucket=failure.bucket, Prefix=failure.key).get("KeyCount"):
            break
        time.sleep(0.05)
    written = json.loads(s3.get_object(Bucket=failure.bucket, Key=failure.key)["Body"].read())
    assert (written["status"], written["code"]) == (400, "BAD_REQUEST") and '"topK"' in written["reason"]


# ---- concurrency: the next study is read while the model works on the current one ---------------
def _overlapping_service(scorer, monkeypatch, *, concurrency, wait_s):
    """Instruments the scorer: the first forward pass waits (up to ``wait_s``) for a second study to be
    read, and every forward pass counts how many run at once."""
    import ichal.scoring

    state = {"reads": 0, "active": 0, "max_active": 0, "overlapped": None}
    lock = threading.Lock()
    forward_started, second_read_done = threading.Event(), threading.Event()
    real_read, real_predict = ichal.scoring.read_stacks, scorer.ensemble.predict

    def read(*args, **kwargs):
        with lock:
            state["reads"] += 1
            second = state["reads"] == 2
        if second:
            forward_started.wait(wait_s)  # read the second study while the first is in the model
        stacks = real_read(*args, **kwargs)
        if second:
            second_read_done.set()
        return stacks

    def predict(*args, **kwargs):
        with lock:
            state["active"] += 1
            state["max_active"] = max(state["max_active"], state["active"])
            first = state["overlapped"] is None
            if first:
                state["overlapped"] = False
        try:
            if first:
                forward_started.set()
                state["overlapped"] = second_read_done.wait(wait_s)
            return real_predict(*args, **kwargs)
        finally:
            with lock:
                state["active"] -= 1

    monkeypatch.setattr(ichal.scoring, "read_stacks", read)
    monkeypatch.setattr(scorer.ensemble, "predict", predict)
    return ScoringService(scorer=scorer.handle_request, s3=scorer.s3, concurrency=concurrency), state


def _two_studies(s3):
    requests = []
    for seed in (31, 32):
        put = s3.put_object(Bucket="studies", Key=f"uploads/c{seed}.zip", Body=dicom_zip(seed))
        requests.append({"input": f"s3://studies/uploads/c{seed}.zip", "versionId": put["VersionId"]})
    return requests


def _invoke_concurrently(service, requests):
    results = [None] * len(requests)

    def run(i):
        results[i] = service.invoke(json.dumps(requests[i]).encode())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def test_reading_the_next_study_overlaps_the_model_which_runs_one_request_at_a_time(endpoint, monkeypatch):
    _, s3, scorer = endpoint
    requests = _two_studies(s3)
    alone = [scorer.handle_request(r) for r in requests]  # reference: one after the other, uninstrumented
    service, state = _overlapping_service(scorer, monkeypatch, concurrency=2, wait_s=30)

    results = _invoke_concurrently(service, requests)

    assert state["overlapped"] is True, "the second study was not read while the first was in the model"
    assert state["max_active"] == 1, "two forward passes ran at once on one accelerator"
    for got, want in zip(results, alone):
        assert got["input"] == want["input"]
        assert got["stacks"][0]["stackUncertainty"] == pytest.approx(
            want["stacks"][0]["stackUncertainty"], rel=1e-6, abs=1e-12
        )
        got_t, want_t = got["stacks"][0]["perThreshold"], want["stacks"][0]["perThreshold"]
        assert [t["components"] for t in got_t] == [t["components"] for t in want_t]
        assert [t["boundaryLength"] for t in got_t] == pytest.approx([t["boundaryLength"] for t in want_t])
        assert got["timings"]["accelerator_wait"] >= 0


def test_with_concurrency_1_requests_run_strictly_one_after_another(endpoint, monkeypatch):
    # The control for the test above: one request at a time cannot read the next study early.
    _, s3, scorer = endpoint
    service, state = _overlapping_service(scorer, monkeypatch, concurrency=1, wait_s=1.0)
    results = _invoke_concurrently(service, _two_studies(s3))
    assert state["overlapped"] is False and state["max_active"] == 1
    assert all(r is not None and r["stacks"] for r in results)


def test_overlays_quantised_on_the_device_equal_the_numpy_formula(endpoint, monkeypatch):
    from ichal.scoring import JS_MAX, encode_overlays, overlay_arrays

    _, s3, scorer = endpoint
    captured = _spy_features(monkeypatch, scorer)
    (request, _) = _two_studies(s3)
    scorer.handle_request(request)
    features = captured[-1]
    heat = features.mean_heatmap.detach().float().cpu().numpy()
    js = features.js_map.detach().float().cpu().numpy()
    encoded = encode_overlays(overlay_arrays(features))
    with zipfile.ZipFile(io.BytesIO(encoded)) as archive:  # numpy's npz layout, DEFLATE members
        assert sorted(archive.namelist()) == ["frame_scores.npy", "js_divergence.npy", "mean_heatmap.npy"]
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    with np.load(io.BytesIO(encoded)) as arrays:
        np.testing.assert_array_equal(
            arrays["mean_heatmap"], np.rint(np.clip(heat, 0, 1) * 255).astype(np.uint8)
        )
        np.testing.assert_array_equal(
            arrays["js_divergence"], np.rint(np.clip(js / JS_MAX, 0, 1) * 255).astype(np.uint8)
        )
        np.testing.assert_array_equal(
            arrays["frame_scores"], np.asarray(features.frame_scores, dtype=np.float32)
        )


@pytest.mark.parametrize("concurrency", [0, -1, 1.5, True])
def test_a_service_refuses_a_concurrency_that_is_not_a_positive_integer(concurrency):
    with pytest.raises(ValueError, match="concurrency"):
        ScoringService(scorer=lambda request: request, concurrency=concurrency)


@pytest.mark.parametrize("argv,env", [(["--concurrency", "0"], None), ([], "two"), ([], "-1")])
def test_serve_refuses_a_concurrency_that_is_not_a_positive_integer(argv, env, monkeypatch, tmp_path, capsys):
    from ichal.serve.main import CONCURRENCY_ENV, main

    if env is not None:
        monkeypatch.setenv(CONCURRENCY_ENV, env)
    with pytest.raises(SystemExit) as exit_info:
        main(["--model-dir", str(tmp_path), *argv])
    assert exit_info.value.code == 2
    assert CONCURRENCY_ENV in capsys.readouterr().err
