"""The server's gallery: nothing acknowledged is lost to a SIGKILL, a forgotten subject is in no file, a gallery
of another model is refused (or re-embedded from its crops), keys guard the API, Milvus Lite works the same."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading

import numpy as np
import pytest

from facecli.errors import FaceCliError
from tests.serving.conftest import crops
from tests.serving.servers import running, start, stop

pytestmark = pytest.mark.slow
KEY = "k3y-for-the-tests-0123456789abcdef"


def _enrol(http, subject, path):
    return http.post("/v1/faces", params={"subject": subject}, files={"file": (path.name, path.read_bytes())})


def test_concurrent_clients_then_a_sigkill_lose_no_acknowledged_face(serve_world, tmp_path):
    faces = [p for paths in crops(serve_world).values() for p in paths]
    server = start(["-c", str(serve_world / "model.safetensors"), "--gallery", str(tmp_path / "g")], tmp_path / "1.log")
    acknowledged, errors, killed = [], [], threading.Event()

    def client(number):
        with server.client() as http:
            for step in range(1000):
                path = faces[(number + step) % len(faces)]
                try:
                    answer = _enrol(http, f"client{number}", path)
                    if step % 3 == 0:
                        found = http.post("/v1/identify", files={"file": (path.name, path.read_bytes())})
                        assert found.status_code == 200, found.text
                except Exception as exc:  # noqa: BLE001 - after the kill, connections fail: that is expected
                    if not killed.is_set():
                        errors.append(repr(exc))
                    return
                if answer.status_code != 201:
                    errors.append(answer.text)
                    return
                acknowledged.append(answer.json()["face_id"])
                if len(acknowledged) >= 40:
                    return

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    while len(acknowledged) < 25 and any(t.is_alive() for t in threads):
        threading.Event().wait(0.02)
    killed.set()
    stop(server.process, signal.SIGKILL)  # mid-enrolment: the clients are still sending
    for thread in threads:
        thread.join()
    assert not errors and len(acknowledged) >= 25
    with running(
        ["-c", str(serve_world / "model.safetensors"), "--gallery", str(tmp_path / "g")], tmp_path / "2.log"
    ) as again:
        with again.client() as http:
            stored = {f["id"] for f in http.get("/v1/faces").json()["faces"]}
            path = faces[0]
            found = http.post("/v1/identify", files={"file": (path.name, path.read_bytes())}).json()
    assert set(acknowledged) <= stored
    assert found["images"][0]["faces"][0]["matches"][0]["score"] == pytest.approx(1, abs=1e-4)


def test_a_deleted_subject_is_in_no_file_of_the_gallery(serve_world, tmp_path):
    faces = crops(serve_world)
    gallery = tmp_path / "g"
    args = ["-c", str(serve_world / "model.safetensors"), "--gallery", str(gallery), "--keep-crops"]
    with running(args, tmp_path / "s.log") as server, server.client() as http:
        for path in faces["person_0000"] + faces["person_0001"]:
            assert _enrol(http, path.parent.name, path).status_code == 201
        with sqlite3.connect(gallery / "gallery.sqlite") as db:  # what the server wrote for the subject
            written = db.execute("SELECT embedding, crop FROM faces WHERE subject = 'person_0000'").fetchall()
        assert http.delete("/v1/subjects/person_0000").json()["faces_deleted"] == 3
    stored = b"".join(p.read_bytes() for p in gallery.iterdir() if p.is_file())
    kept = sqlite3.connect(gallery / "gallery.sqlite").execute("SELECT embedding FROM faces").fetchall()
    assert len(written) == 3 and all(crop for _, crop in written) and len(kept) == 3
    assert all(blob in stored for (blob,) in kept)  # the search below is of what was kept, so it can find
    assert b"person_0000" not in stored
    assert not any(embedding in stored or crop in stored for embedding, crop in written)


def test_a_gallery_of_another_model_is_refused_then_reembedded_from_its_crops(serve_world, tmp_path):
    faces = crops(serve_world)
    gallery = tmp_path / "g"
    first = ["-c", str(serve_world / "model.safetensors"), "--gallery", str(gallery), "--keep-crops"]
    with running(first, tmp_path / "1.log") as server, server.client() as http:
        for path in faces["person_0002"]:
            assert _enrol(http, "dana", path).status_code == 201
        old_hash = http.get("/v1/model").json()["model_hash"]
    other = ["-c", str(serve_world / "other.safetensors"), "--gallery", str(gallery)]
    refused = subprocess.run(
        [sys.executable, "-m", "facecli", "serve", *other, "--port", "0", "--device", "cpu"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert refused.returncode == 2
    assert old_hash in refused.stderr and "--reembed" in refused.stderr and "Traceback" not in refused.stderr
    with running([*other, "--reembed"], tmp_path / "2.log") as server, server.client() as http:
        assert http.get("/v1/model").json()["model_hash"] != old_hash
        path = faces["person_0002"][1]
        found = http.post("/v1/identify", files={"file": (path.name, path.read_bytes())}).json()
    best = found["images"][0]["faces"][0]["matches"][0]
    assert best["subject"] == "dana" and best["score"] == pytest.approx(1, abs=1e-4)


def test_api_keys_guard_the_api_and_are_never_logged(serve_world, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text(f"# the tests' key\n{KEY}\n")
    args = ["-c", str(serve_world / "model.safetensors"), "--api-key-file", str(keys)]
    with running(args, tmp_path / "s.log") as server:
        with server.client() as http:
            assert http.get("/healthz").status_code == 200
            refused = http.get("/v1/model")
            wrong = http.get("/v1/model", headers={"x-api-key": KEY[:-1] + "x"})
            by_header = http.get("/v1/model", headers={"x-api-key": KEY})
            by_bearer = http.get("/v1/model", headers={"authorization": f"Bearer {KEY}"})
            metrics = http.get("/metrics")
        log = server.output()
    assert refused.status_code == wrong.status_code == metrics.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert by_header.status_code == by_bearer.status_code == 200
    assert KEY not in log and KEY[:-1] not in log


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--host", "0.0.0.0"], "--api-key-file"),
        (["--api-key-file", "missing.txt"], "missing.txt"),
        (["--max-batch", "0"], "--max-batch"),
        (["--align-template", "nope"], "template"),
        (["--gallery", "damaged"], "not a database"),
        (["--gallery", "g", "--import-index", "missing.npz"], "missing.npz"),
    ],
)
def test_unsafe_or_wrong_options_are_one_line(serve_world, extra, message, tmp_path):
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "gallery.sqlite").write_text("not a database")
    result = subprocess.run(
        [sys.executable, "-m", "facecli", "serve", "-c", str(serve_world / "model.safetensors"), *extra],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip().splitlines()[-1].startswith("error: ")


def test_milvus_lite_serves_the_same_gallery_api(serve_world, tmp_path):
    pytest.importorskip("milvus_lite")
    faces = crops(serve_world)
    args = ["-c", str(serve_world / "model.safetensors"), "--gallery", str(tmp_path / "faces.db")]
    with running(args, tmp_path / "s.log") as server, server.client() as http:
        for name in ("person_0000", "person_0001"):
            for path in faces[name][:2]:
                assert _enrol(http, name, path).status_code == 201
        assert {s["name"]: s["faces"] for s in http.get("/v1/subjects").json()["subjects"]} == {
            "person_0000": 2, "person_0001": 2,
        }  # fmt: skip
        path = faces["person_0001"][1]
        found = http.post("/v1/identify", params={"top_k": 2}, files={"file": (path.name, path.read_bytes())}).json()
        assert http.delete("/v1/subjects/person_0001").json()["faces_deleted"] == 2
        after = http.post("/v1/identify", files={"file": (path.name, path.read_bytes())}).json()
    (face,) = found["images"][0]["faces"]
    assert face["identity"] == "person_0001" and face["matches"][0]["score"] == pytest.approx(1, abs=1e-4)
    assert [m["subject"] for m in after["images"][0]["faces"][0]["matches"]] == ["person_0000"]
    from facecli.serving.milvus_gallery import MilvusGallery

    with pytest.raises(FaceCliError, match="built with model"):
        MilvusGallery(str(tmp_path / "faces.db"), "another-model", 16)


def test_facecli_index_files_go_into_and_out_of_the_gallery(serve_world, tmp_path):
    from facecli.embed import EmbedOptions
    from facecli.identification import Gallery, build_index
    from facecli.runtime import resolve_runtime

    model = serve_world / "model.safetensors"
    build_index(out=tmp_path / "index.npz", checkpoint=model, gallery_dir=serve_world / "faces",
                embedding=EmbedOptions(resolve_runtime("cpu"), workers=0))  # fmt: skip
    args = ["-c", str(model), "--gallery", str(tmp_path / "g"), "--import-index", str(tmp_path / "index.npz")]
    for log in ("1.log", "2.log"):  # the second start skips the subjects imported by the first
        with running(args, tmp_path / log) as server, server.client() as http:
            subjects = {s["name"]: s["faces"] for s in http.get("/v1/subjects").json()["subjects"]}
            path = crops(serve_world)["person_0003"][2]
            found = http.post("/v1/identify", files={"file": (path.name, path.read_bytes())}).json()
        assert subjects == {f"person_000{n}": 3 for n in range(4)}
        assert found["images"][0]["faces"][0]["matches"][0]["score"] == pytest.approx(1, abs=1e-4)
    out = tmp_path / "out.npz"
    export = [sys.executable, "-m", "facecli", "serve", "-c", str(model), "--gallery", str(tmp_path / "g"),
              "--export-index", str(out), "--device", "cpu"]  # fmt: skip
    result = subprocess.run(export, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    again = subprocess.run(export, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "--force" in again.stderr
    original, exported = Gallery.open(tmp_path / "index.npz"), Gallery.open(out)
    assert sorted(exported.identities) == sorted(original.identities)
    assert exported.model_hash == original.model_hash
    assert np.abs(np.sort(exported.embeddings, axis=0) - np.sort(original.embeddings, axis=0)).max() < 1e-6


def test_two_worker_processes_share_one_gallery(serve_world, tmp_path):
    faces = crops(serve_world)
    args = ["-c", str(serve_world / "model.safetensors"), "--gallery", str(tmp_path / "g"), "--workers", "2"]
    with running(args, tmp_path / "s.log") as server:
        for name, paths in faces.items():
            with server.client() as http:  # a new connection each time: either process may answer
                assert _enrol(http, name, paths[0]).status_code == 201
        for name, paths in faces.items():
            for _ in range(3):
                with server.client() as http:
                    found = http.post("/v1/identify", files={"file": (paths[0].name, paths[0].read_bytes())}).json()
                assert found["images"][0]["faces"][0]["matches"][0]["subject"] == name
        log = server.output()
    assert log.count("Started server process") == 2
