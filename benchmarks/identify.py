"""1:N search at scale: query latency, memory and IVF recall for a gallery of random 512-d embeddings.

Queries are gallery vectors plus noise, so each has a true nearest neighbour. Random Gaussian
vectors have no cluster structure, which is the hardest case for IVF; real face galleries cluster
by identity and recall is higher there. Usage: python benchmarks/identify.py [--size 1000000]
"""

from __future__ import annotations

import argparse
import resource
import time

import faiss
import numpy as np
from rich.console import Console
from rich.table import Table


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def latency_ms(index: faiss.Index, queries: np.ndarray, repeats: int = 20) -> tuple[float, float]:
    single = []
    for q in queries[:repeats]:
        start = time.perf_counter()
        index.search(q[None], 5)
        single.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    index.search(queries, 5)
    batch = (time.perf_counter() - start) * 1000 / len(queries)
    return float(np.median(single)), batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--nlist", type=int, default=1024)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    gallery = np.empty((args.size, args.dim), np.float32)
    for start in range(0, args.size, 100_000):  # fill in chunks to keep the peak low
        gallery[start : start + 100_000] = unit(rng.standard_normal((min(100_000, args.size - start), args.dim)))
    truth = rng.integers(0, args.size, args.queries)
    queries = unit(gallery[truth] + 0.03 * rng.standard_normal((args.queries, args.dim)).astype(np.float32))
    table = Table(title=f"1:N search, {args.size:,} x {args.dim}-d gallery, {faiss.omp_get_max_threads()} threads")
    for column in ("index", "build (s)", "memory (GiB)", "1 query (ms)", "batched (ms/query)", "recall@1"):
        table.add_column(column, justify="right" if column != "index" else "left")

    start = time.perf_counter()
    flat = faiss.IndexFlatIP(args.dim)
    flat.add(gallery)
    build = time.perf_counter() - start
    exact = flat.search(queries, 1)[1][:, 0]
    single, batched = latency_ms(flat, queries)
    table.add_row(
        "flat (exact)",
        f"{build:.1f}",
        f"{gallery.nbytes / 2**30:.2f}",
        f"{single:.1f}",
        f"{batched:.2f}",
        f"{(exact == truth).mean():.3f}",
    )

    start = time.perf_counter()
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(args.dim), args.dim, args.nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.train(gallery[rng.choice(args.size, min(args.size, 64 * args.nlist), replace=False)])
    ivf.add(gallery)
    build = time.perf_counter() - start
    for nprobe in (1, 8, 32, 128):
        ivf.nprobe = nprobe
        found = ivf.search(queries, 1)[1][:, 0]
        single, batched = latency_ms(ivf, queries)
        table.add_row(
            f"ivf{args.nlist}, nprobe {nprobe}",
            f"{build:.1f}",
            f"{gallery.nbytes / 2**30:.2f}",
            f"{single:.1f}",
            f"{batched:.2f}",
            f"{(found == exact).mean():.3f} (vs exact)",
        )
    Console().print(table)
    print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
