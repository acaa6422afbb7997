"""`facecli serve` over real HTTP: every endpoint answers as the CLI and the library do, every refusal is a JSON
error with its status and no traceback, and the gallery forgets what is deleted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facecli.embed import EmbedOptions, embed_files
from facecli.photos import compare
from facecli.runtime import resolve_runtime
from tests.serving.conftest import THRESHOLD, b64, crops
from tests.serving.servers import running

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(serve_world, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    model = serve_world / "model.safetensors"
    with running(["-c", str(model), "--gallery", str(tmp / "gallery"), "--keep-crops"], tmp / "serve.log") as s:
        yield s


def _files(**paths):
    return {name: (path.name, path.read_bytes(), "image/jpeg") for name, path in paths.items()}


def test_model_verify_and_embed_answer_as_the_cli_and_the_library(server, serve_world, reference):
    faces = crops(serve_world)
    a, b = faces["person_0000"][0], faces["person_0001"][0]
    with server.client() as http:
        model = http.get("/v1/model").json()
        assert model["threshold"] == THRESHOLD and model["threshold_source"] == "model"
        assert model["metric"] == "cosine" and model["preprocessing"]["input_size"] == [64, 64]
        multipart = http.post("/v1/verify", files=_files(a=a, b=b)).json()
        as_json = http.post("/v1/verify", json={"a": b64(a), "b": b64(b)}, params={"threshold": 0.99}).json()
        photo = reference / "faces" / "photo_kate_siegel.jpg"
        embedded = http.post("/v1/embed", files=[("file", (p.name, p.read_bytes())) for p in (a, photo)]).json()
    expected = compare(a, b, checkpoint=serve_world / "model.safetensors",
                       embedding=EmbedOptions(resolve_runtime("cpu"), workers=0, align="auto"))  # fmt: skip
    (pair,) = multipart["pairs"]
    assert pair["score"] == pytest.approx(float(expected.scores[0]), abs=1e-4)
    assert pair["metric"] == "cosine" and pair["threshold"] == THRESHOLD and pair["same"] == (pair["score"] > 0.5)
    assert multipart["threshold_source"] == "model" and as_json["threshold_source"] == "request"
    assert as_json["pairs"][0]["score"] == pytest.approx(pair["score"], abs=1e-6)
    assert as_json["pairs"][0]["same"] == (pair["score"] > 0.99)
    crop, raw = embedded["images"]
    library = embed_files(serve_world / "model.safetensors", [a], EmbedOptions(resolve_runtime("cpu"), workers=0))
    assert np.abs(np.array(crop["faces"][0]["embedding"]) - library.vectors[0]).max() < 1e-4
    (face,) = raw["faces"]  # a raw photo is detected and aligned: its box and landmarks come back
    assert len(face["box"]) == 4 and len(face["landmarks"]) == 5 and face["score"] > 0.9


def test_a_group_photo_reports_every_face(server, reference):
    group = reference / "faces" / "multiface.jpg"
    with server.client() as http:
        found = http.post("/v1/embed", files={"file": (group.name, group.read_bytes())}).json()
    faces = found["images"][0]["faces"]
    assert len(faces) == 6 and all(len(f["embedding"]) == 16 for f in faces)
    areas = [(f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]) for f in faces]
    assert areas == sorted(areas, reverse=True)


def test_the_gallery_enrols_lists_identifies_and_forgets(server, serve_world):
    faces = crops(serve_world)
    with server.client() as http:
        assert http.post("/v1/subjects", json={"subject": "carol"}).status_code == 201
        assert http.post("/v1/subjects", json={"subject": "carol"}).status_code == 409
        ids = {}
        for name in ("person_0000", "person_0001", "person_0002"):
            for path in faces[name][:2]:
                answer = http.post(
                    "/v1/faces", params={"subject": name}, files={"file": (path.name, path.read_bytes())}
                )
                assert answer.status_code == 201, answer.text
                ids.setdefault(name, []).append(answer.json()["face_id"])
        listed = {s["name"]: s["faces"] for s in http.get("/v1/subjects").json()["subjects"]}
        assert listed == {"carol": 0, "person_0000": 2, "person_0001": 2, "person_0002": 2}
        page = http.get("/v1/subjects", params={"limit": 2}).json()
        assert [s["name"] for s in page["subjects"]] == ["carol", "person_0000"] and page["next"] == "person_0000"
        rest = http.get("/v1/subjects", params={"after": page["next"]}).json()
        assert [s["name"] for s in rest["subjects"]] == ["person_0001", "person_0002"] and rest["next"] is None
        first = http.get("/v1/faces", params={"limit": 4}).json()
        second = http.get("/v1/faces", params={"after": first["next"], "limit": 4}).json()
        assert [f["id"] for f in first["faces"] + second["faces"]] == sorted(i for v in ids.values() for i in v)
        assert [f["id"] for f in http.get("/v1/faces", params={"subject": "person_0001"}).json()["faces"]] == ids[
            "person_0001"
        ]
        known = faces["person_0001"][0]  # an enrolled image: its own subject at cosine 1
        found = http.post("/v1/identify", params={"top_k": 2}, files={"file": (known.name, known.read_bytes())})
        (face,) = found.json()["images"][0]["faces"]
        assert face["identity"] == "person_0001" and face["matches"][0]["score"] == pytest.approx(1, abs=1e-4)
        assert len(face["matches"]) == 2 and found.json()["threshold_source"] == "model"
        strict = http.post(
            "/v1/identify",
            params={"threshold": 0.999999},
            files={"file": ("x.jpg", faces["person_0003"][0].read_bytes())},
        )
        assert strict.json()["images"][0]["faces"][0]["identity"] == "unknown"
        vector = http.post("/v1/embed", json={"images": [b64(known)]}).json()["images"][0]["faces"][0]["embedding"]
        by_vector = http.post("/v1/identify/embeddings", json={"embeddings": [vector]}, params={"top_k": 1}).json()
        assert by_vector["results"][0]["identity"] == "person_0001"
        assert http.delete(f"/v1/faces/{ids['person_0001'][0]}").status_code == 200
        assert http.delete(f"/v1/faces/{ids['person_0001'][0]}").status_code == 404
        for beyond_int64 in (f"/v1/faces/{2**64}", f"/v1/faces?after={2**64}"):  # found by the fuzzing below: a 500
            answer = http.request("DELETE" if "?" not in beyond_int64 else "GET", beyond_int64)
            assert answer.status_code == 422 and answer.json()["error"]["code"]
        assert http.delete("/v1/subjects/person_0001").json()["faces_deleted"] == 1
        after = http.post("/v1/identify/embeddings", json={"embeddings": [vector]}, params={"top_k": 5}).json()
        assert "person_0001" not in [m["subject"] for m in after["results"][0]["matches"]]
        assert http.get("/v1/subjects/person_0001").status_code == 404
        metrics = http.get("/metrics").text
    assert 'facecli_requests_total{method="POST",route="/v1/faces",status="201"} 6.0' in metrics
    assert "facecli_batch_faces_count" in metrics and "facecli_gallery_faces 4.0" in metrics
    searched = re.search(r"^facecli_search_queries_sum (\S+)$", metrics, re.M)
    assert searched and float(searched.group(1)) >= 4  # every identify went through the gallery's search batcher


JSON = {"content-type": "application/json"}
BAD = [
    ("post", "/v1/embed", {"content": b"x", "headers": {"content-type": "text/plain"}}, 415, "unsupported_media_type"),
    ("post", "/v1/embed", {"json": {"images": ["!!"]}}, 400, "bad_request"),
    ("post", "/v1/embed", {"content": b'{"images": ', "headers": JSON}, 400, "bad_request"),
    ("post", "/v1/embed", {"json": {"images": [12]}}, 400, "bad_request"),
    ("post", "/v1/embed", {"json": ["not", "an", "object"]}, 400, "bad_request"),
    ("post", "/v1/embed", {"files": {"file": ("a.jpg", b"not an image")}}, 422, "bad_image"),
    ("post", "/v1/verify", {"files": {"a": ("a.jpg", b"x")}}, 400, "bad_request"),
    ("post", "/v1/identify", {"json": {"images": []}, "params": {"top_k": 0}}, 422, "invalid_request"),
    ("post", "/v1/identify", {"json": {"images": []}, "params": {"threshold": "nan"}}, 400, "bad_request"),
    ("post", "/v1/identify/embeddings", {"json": {"embeddings": [[1.0, 2.0]]}}, 400, "bad_request"),
    ("post", "/v1/identify/embeddings", {"json": {"embeddings": "x"}}, 422, "invalid_request"),
    ("post", "/v1/subjects", {"json": {"subject": " padded "}}, 400, "bad_request"),
    ("post", "/v1/faces", {"json": {"images": []}}, 422, "invalid_request"),
    ("get", "/v1/subjects/nobody", {}, 404, "not_found"),
    ("get", "/v1/faces", {"params": {"subject": "nobody"}}, 404, "not_found"),
    ("delete", "/v1/faces/999999", {}, 404, "not_found"),
    ("get", "/v1/nothing", {}, 404, "not_found"),
    ("put", "/v1/verify", {}, 405, "method_not_allowed"),
    ("post", "/v1/embed", {"content": b"0" * (33 << 20), "headers": JSON}, 413, "too_large"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "request_args", "status", "code"), BAD, ids=lambda v: str(v)[:40])
def test_bad_requests_get_their_status_and_a_json_error(server, method, path, request_args, status, code):
    with server.client() as http:
        answer = http.request(method.upper(), path, **request_args)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and error["message"] and "Traceback" not in answer.text


def test_photos_without_faces_and_damaged_images_are_named(server, serve_world, reference):
    whole = (reference / "faces" / "photo_kate_siegel.jpg").read_bytes()
    with server.client() as http:
        no_face = http.post("/v1/embed", files={"file": ("empty.png", (serve_world / "no_face.png").read_bytes())})
        truncated = http.post("/v1/embed", files={"file": ("cut.jpg", whole[: len(whole) // 2])})
        as_crop = http.post(
            "/v1/embed",
            params={"aligned": True},
            files={"file": ("empty.png", (serve_world / "no_face.png").read_bytes())},
        )
    assert no_face.status_code == 422 and no_face.json()["error"]["code"] == "no_face"
    assert "empty.png" in no_face.json()["error"]["message"] and "aligned=true" in no_face.json()["error"]["message"]
    assert truncated.status_code == 422 and "cut.jpg" in truncated.json()["error"]["message"]
    assert as_crop.status_code == 200  # a crop is used as it is: no detection
    assert "Traceback" not in server.output()


def test_fuzzing_the_openapi_schema_finds_no_server_error(server):
    """schemathesis: a bounded, seeded number of generated requests per operation; no answer is a 5xx."""
    st = Path(sys.executable).with_name("st")
    result = subprocess.run(
        [str(st), "run", f"{server.url}/openapi.json", "--checks", "not_a_server_error", "--max-examples", "5",
         "--seed", "1", "--no-color"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    assert "passed" in result.stdout and "Traceback" not in server.output()


def test_an_int8_export_serves_like_any_onnx_file(serve_world, tmp_path):
    from facecli.exporting import export

    int8 = tmp_path / "model_int8.onnx"
    export(checkpoint=serve_world / "model.safetensors", out=int8, int8=True, calibrate=serve_world / "faces")
    a = crops(serve_world)["person_0000"][0]
    with running(["-c", str(int8)], tmp_path / "serve.log") as s, s.client() as http:
        model = http.get("/v1/model").json()
        embedded = http.post("/v1/embed", files=_files(file=a), params={"aligned": True}).json()
    library = embed_files(int8, [a], EmbedOptions(resolve_runtime("cpu"), "onnx", workers=0))
    assert "onnxruntime" in model["backend"]
    assert np.abs(np.array(embedded["images"][0]["faces"][0]["embedding"]) - library.vectors[0]).max() < 1e-4
