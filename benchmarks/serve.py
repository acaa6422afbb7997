"""`facecli serve` under load on loopback, in one run on this machine:

1. /v1/verify and /v1/identify requests/s and p50/p99 latency at 1, 4 and 16 concurrent clients, batched
   (the default) against one process calling the model per request without batching (`--max-batch 1`);
2. the batch settings: requests/s at 16 clients for a few (max batch, max wait) pairs;
3. identify latency at 10^3, 10^5 and 10^6 gallery faces (SQLite + faiss: exact below EXACT_LIMIT, IVF above),
   with IVF's recall against exact search;
4. /v1/identify requests/s and latency at 1, 4 and 16 clients against a gallery of 10^5 faces, batched against
   unbatched (where the search, not the model, is most of a request's cost);
5. Milvus Lite against SQLite + faiss at 10^5 faces: insert time and search latency.

The clients are threads of this process (httpx), on the same 2 cores as the server: the figures are what one
machine serves to itself, a lower bound on a server with its own cores.

Usage: python benchmarks/serve.py [--seconds 8] [--backbone mobilenet --size 160] [--skip-milvus] [--largest 1000000]
       [--only throughput batching sizes large milvus] [--large 100000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from facecli.checkpoint import save_model
from facecli.data.synth import synth
from facecli.identification.model_identity import model_identity
from facecli.models import create_model
from facecli.serving.sqlite_gallery import EXACT_LIMIT, SqliteGallery

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.serving.servers import running  # noqa: E402 - the tests' server starter, from the repository root

console = Console()


def _load(url: str, send, clients: int, seconds: float) -> dict:  # noqa: ANN001 - send(http) makes one request
    """`clients` threads sending requests back to back for `seconds` (after a second of warm-up)."""
    latencies: list[float] = []
    errors = [0]
    start_at = time.monotonic() + 1.0
    stop_at = start_at + seconds

    def client() -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while (now := time.monotonic()) < stop_at:
                answer = send(http)
                if answer.status_code >= 300:
                    errors[0] += 1
                if now >= start_at:
                    latencies.append(time.monotonic() - now)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lat = np.array(latencies) * 1000
    return {"rps": round(len(lat) / seconds, 1), "p50_ms": round(float(np.percentile(lat, 50)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1), "errors": errors[0]}  # fmt: skip


def _identify_requests(images: list[bytes]):  # noqa: ANN202 - send(http), for _load
    """A /v1/identify of the next aligned crop, in turn, each time it is called."""
    counter = iter(range(10**9))

    def identify(http):  # noqa: ANN001, ANN202
        data = images[next(counter) % len(images)]
        return http.post("/v1/identify", params={"aligned": True}, files={"file": ("q.jpg", data)})

    return identify


def throughput(work: Path, model: Path, crops: list[Path], seconds: float, modes: dict[str, list[str]]) -> list[dict]:
    """Per mode (server options), endpoint and client count: requests/s and latency."""
    rows = []
    images = [p.read_bytes() for p in crops]
    for mode, extra in modes.items():
        gallery = work / f"gallery-{mode.replace(' ', '_')}"
        with running(["-c", str(model), "--gallery", str(gallery), *extra], work / f"{mode}.log") as server:
            with server.client() as http:
                for n, data in enumerate(images[:50]):
                    http.post(
                        "/v1/faces", params={"subject": f"s{n % 10}", "aligned": True}, files={"file": ("f.jpg", data)}
                    )
            counter = iter(range(10**9))

            def verify(http, counter=counter):  # noqa: ANN001, ANN202
                n = next(counter)
                files = {"a": ("a.jpg", images[n % len(images)]), "b": ("b.jpg", images[(n + 1) % len(images)])}
                return http.post("/v1/verify", params={"aligned": True}, files=files)

            for endpoint, send in (("verify", verify), ("identify", _identify_requests(images))):
                for clients in (1, 4, 16):
                    figures = _load(server.url, send, clients, seconds)
                    rows.append({"mode": mode, "endpoint": endpoint, "clients": clients, **figures})
                    console.print(rows[-1])
    return rows


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.standard_normal((n, d), dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _filled(folder: Path, model_hash: str, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """A SQLite gallery of n random faces of 20 per subject (written in chunks), closed; its vectors."""
    gallery = SqliteGallery(folder, model_hash, d)
    gallery._db.execute("PRAGMA synchronous=OFF")  # filled fast; what is measured is search
    vectors = _unit(rng, n, d)
    start = time.perf_counter()
    for subject, lo in enumerate(range(0, n, 20)):
        chunk = vectors[lo : lo + 20]
        gallery.add_faces(f"s{subject}", chunk, [None] * len(chunk), [None] * len(chunk))
    console.print(f"filled {n} faces in {time.perf_counter() - start:.0f} s")
    gallery.close()
    return vectors


def gallery_sizes(work: Path, model: Path, sizes: list[int], d: int, queries: int = 200) -> list[dict]:
    """/v1/identify/embeddings latency (one client, one embedding per request) per gallery size, and recall."""
    rows, rng = [], np.random.default_rng(0)
    for n in sizes:
        folder = work / f"size-{n}"
        vectors = _filled(folder, model_identity(model), n, d, rng)
        picked = rng.choice(n, queries, replace=False)
        noisy = vectors[picked] + 0.3 * _unit(rng, queries, d)  # cosine ~0.96 to its face, ~0 +- 0.05 to others
        start = time.perf_counter()
        with running(["-c", str(model), "--gallery", str(folder)], work / f"size-{n}.log") as server:
            ready_s = time.perf_counter() - start
            latencies, hits = [], 0
            with server.client() as http:
                for query, q in zip(noisy, range(queries), strict=True):
                    t = time.perf_counter()
                    found = http.post(
                        "/v1/identify/embeddings", json={"embeddings": [query.tolist()]}, params={"top_k": 1}
                    )
                    latencies.append((time.perf_counter() - t) * 1000)
                    best = found.json()["results"][0]["matches"][0]["face_id"] - 1  # ids count from 1, in order
                    hits += best == picked[q]
        lat = np.array(latencies[10:])
        rows.append({
            "faces": n, "index": "flat (exact)" if n <= EXACT_LIMIT else "IVF", "start_s": round(ready_s, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 1), "p99_ms": round(float(np.percentile(lat, 99)), 1),
            "recall@1": round(hits / queries, 3),
        })  # fmt: skip
        console.print(rows[-1])
    return rows


def large_gallery(work: Path, model: Path, crops: list[Path], seconds: float, faces: int, d: int) -> list[dict]:
    """/v1/identify (an aligned crop a request) at 1, 4 and 16 clients on a gallery of `faces`, batched and not."""
    rows, images = [], [p.read_bytes() for p in crops]
    filled = work / f"large-{faces}"
    _filled(filled, model_identity(model), faces, d, np.random.default_rng(2))
    for mode, extra in (("batched", []), ("unbatched", ["--max-batch", "1"])):
        gallery = work / f"large-{faces}-{mode}"
        shutil.copytree(filled, gallery)
        identify = _identify_requests(images)
        with running(["-c", str(model), "--gallery", str(gallery), *extra], work / f"large-{mode}.log") as server:
            for clients in (1, 4, 16):
                rows.append({"mode": mode, "faces": faces, "clients": clients,
                             **_load(server.url, identify, clients, seconds)})  # fmt: skip
                console.print(rows[-1])
        shutil.rmtree(gallery)
    return rows


def milvus_against_sqlite(work: Path, n: int, d: int, queries: int = 200) -> list[dict]:
    """Insert time and search latency (library calls, top 5 subjects) of both engines at n faces."""
    from facecli.serving.milvus_gallery import MilvusGallery

    rng = np.random.default_rng(1)
    vectors = _unit(rng, n, d)
    probes = vectors[rng.choice(n, queries, replace=False)] + 0.3 * _unit(rng, queries, d)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    rows = []
    for name, gallery in (("sqlite+faiss", SqliteGallery(work / "vs-sqlite", "m", d)),
                          ("milvus lite", MilvusGallery(str(work / "vs.db"), "m", d))):  # fmt: skip
        start = time.perf_counter()
        for subject, lo in enumerate(range(0, n, 1000)):  # 1000 faces a call: bulk import
            chunk = vectors[lo : lo + 1000]
            gallery.add_faces(f"s{subject}", chunk, [None] * len(chunk), [None] * len(chunk))
        insert_s = time.perf_counter() - start
        gallery.search(probes[:5], 5)
        latencies = []
        for probe in probes:
            t = time.perf_counter()
            gallery.search(probe[None], 5)
            latencies.append((time.perf_counter() - t) * 1000)
        gallery.close()
        rows.append({"engine": name, "faces": n, "insert_s": round(insert_s, 1),
                     "p50_ms": round(float(np.percentile(latencies, 50)), 1),
                     "p99_ms": round(float(np.percentile(latencies, 99)), 1)})  # fmt: skip
        console.print(rows[-1])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--backbone", default="mobilenet")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--embedding-size", type=int, default=512)
    parser.add_argument("--largest", type=int, default=1_000_000)
    parser.add_argument("--large", type=int, default=100_000, help="gallery faces of the batched-search section")
    parser.add_argument("--skip-milvus", action="store_true")
    parser.add_argument("--only", choices=("throughput", "batching", "sizes", "large", "milvus"), nargs="*")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/figures/serve.json"))
    args = parser.parse_args()
    only = set(args.only or ("throughput", "batching", "sizes", "large", "milvus"))
    results: dict = {"date": time.strftime("%Y-%m-%d"), "backbone": args.backbone, "input_size": args.size}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = work / "model.safetensors"
        net = create_model(args.backbone, input_size=args.size, embedding_size=args.embedding_size)
        save_model(net.eval(), model)
        synth(work / "faces", identities=20, images=5, size=args.size, seed=0)
        crops = sorted((work / "faces").rglob("*.jpg"))
        if "throughput" in only:
            torch_backend, off = ["--backend", "torch"], ["--max-batch", "1"]
            modes = {"onnx batched": [], "onnx unbatched": off,
                     "torch batched": torch_backend, "torch unbatched": [*torch_backend, *off]}  # fmt: skip
            results["throughput"] = throughput(work, model, crops, args.seconds, modes)
        if "batching" in only:
            modes = {f"batch {b}, wait {w} ms": ["--max-batch", str(b), "--max-wait-ms", str(w)]
                     for b, w in ((32, 0), (32, 2), (32, 5), (8, 2))}  # fmt: skip
            rows = throughput(work, model, crops, args.seconds / 2, modes)
            results["batching"] = [r for r in rows if r["clients"] in (1, 16)]
        if "sizes" in only:
            sizes = [s for s in (1_000, 100_000, 1_000_000) if s <= args.largest]
            results["gallery_sizes"] = gallery_sizes(work, model, sizes, args.embedding_size)
        if "large" in only:
            results["large_gallery"] = large_gallery(work, model, crops, args.seconds, args.large, args.embedding_size)
        if "milvus" in only and not args.skip_milvus:
            results["milvus"] = milvus_against_sqlite(work, 100_000, args.embedding_size)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    for key, rows in results.items():
        if isinstance(rows, list) and rows:
            table = Table(title=key)
            for column in rows[0]:
                table.add_column(column)
            for row in rows:
                table.add_row(*(str(v) for v in row.values()))
            console.print(table)


if __name__ == "__main__":
    main()
