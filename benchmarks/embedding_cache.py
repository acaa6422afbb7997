"""The embedding cache at scale: put and get time and peak memory for 1M entries x 512-d.

Puts come in batches (as eval runs over new images would add them); each put's time is recorded, so the
last puts show whether a put costs its own entries (flat) or the whole cache (growing). Then a fresh process
view opens the cache and gets a random sample. Usage: python benchmarks/embedding_cache.py [--entries 1000000]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

import numpy as np

from facecli.embed.cache import EmbeddingCache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=512)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        cache = EmbeddingCache(tmp, "model")
        put_times = []
        for start in range(0, args.entries, args.batch):
            keys = [
                f"/data/images/{i:08d}.jpg|12345|1700000000000000000|flip=0" for i in range(start, start + args.batch)
            ]
            vectors = rng.standard_normal((args.batch, args.dim), dtype=np.float32)
            began = time.perf_counter()
            cache.put(keys, vectors)
            put_times.append(time.perf_counter() - began)
        del cache
        began = time.perf_counter()
        opened = EmbeddingCache(tmp, "model")
        open_s = time.perf_counter() - began
        sample = [
            f"/data/images/{i:08d}.jpg|12345|1700000000000000000|flip=0" for i in rng.choice(args.entries, 10_000)
        ]
        began = time.perf_counter()
        got = opened.get(sample)
        get_s = time.perf_counter() - began
        assert len(got) == len(set(sample))
        times = np.array(put_times)
        print(f"{args.entries} entries x {args.dim}-d float32, puts of {args.batch}")
        print(
            f"put: median {np.median(times) * 1000:.0f} ms, first 10 mean {times[:10].mean() * 1000:.0f} ms, "
            f"last 10 mean {times[-10:].mean() * 1000:.0f} ms, max {times.max():.2f} s (a merge), "
            f"total {times.sum():.1f} s"
        )
        print(f"open (read every shard): {open_s:.1f} s; get 10k random keys: {get_s * 1000:.0f} ms")
        print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GiB")


if __name__ == "__main__":
    main()
