"""Requests merged into batches server-side. A batcher runs its work on one thread, and each run takes every
request that queued while the previous one ran (up to a batch size), waiting up to `max_wait_ms` for more.
The server has two: the model's forward passes (`model_work`) and the gallery's searches (`search_work`).

`max_batch=1` turns batching off: each request then runs on its own thread, as a server that calls the model
and searches per request does (the baseline benchmarks/serve.py measures against).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import torch

from facecli.serving.store import Match

# measured on the 2-core CPU (benchmarks/serve.py, RESULTS.md "serve"): waiting for more faces only adds latency
# there (identify at 1 client: 96 requests/s waiting 0 ms, 73 at 2 ms, 55 at 5 ms; at 16 clients 133, 122, 104),
# because ONNX Runtime runs a face as fast alone as in a batch (mobilenet 160 px: 321 img/s at 1, 296 at 32);
# what queued while the model ran is batched all the same. A GPU, where batches pay, may want a wait.
MAX_BATCH = 32
MAX_WAIT_MS = 0.0

Item = TypeVar("Item")
Result = TypeVar("Result")
Model = Callable[[torch.Tensor], tuple[np.ndarray, np.ndarray]]  # preprocessed batch -> (embeddings, quality)
Search = Callable[[np.ndarray, int], list[list[Match]]]  # queries, k -> per query its k best subjects
Query = tuple[np.ndarray, int]  # a request's embeddings and its top_k


@dataclass
class _Job:
    item: Any
    done: Future


class Batcher(Generic[Item, Result]):
    """Runs `work` (a list of requests' items -> one result each) on merged batches; `__call__` is thread-safe.
    `size` counts an item's rows towards `max_batch`; `on_batch` is told the rows of each run."""

    def __init__(
        self,
        work: Callable[[list[Item]], list[Result]],
        max_batch: int = MAX_BATCH,
        max_wait_ms: float = MAX_WAIT_MS,
        name: str = "model's batching",
        size: Callable[[Item], int] = len,
    ) -> None:
        self.work, self.max_batch, self.max_wait, self.name, self.size = work, max_batch, max_wait_ms / 1000, name, size
        self.on_batch: Callable[[int], None] = lambda rows: None
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        if max_batch > 1:
            self._thread = threading.Thread(target=self._run, name=f"facecli-{name}", daemon=True)
            self._thread.start()

    def __call__(self, item: Item) -> Result:
        """The item's result, computed together with other requests' items."""
        if self._thread is None:
            self.on_batch(self.size(item))
            return self.work([item])[0]
        job = _Job(item, Future())
        self._jobs.put(job)
        return job.done.result()

    @property
    def running(self) -> bool:
        """Whether a request would be answered: unbatched, or the batcher's thread still up."""
        return self._thread is None or self._thread.is_alive()

    def close(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()

    def _gather(self, first: _Job) -> list[_Job]:
        jobs, count = [first], self.size(first.item)
        deadline = time.monotonic() + self.max_wait
        while count < self.max_batch:
            try:
                job = self._jobs.get_nowait()  # what queued while the last batch ran: never waited for
            except queue.Empty:
                if (left := deadline - time.monotonic()) <= 0:
                    break
                try:
                    job = self._jobs.get(timeout=left)
                except queue.Empty:
                    break
            if job is None:
                self._jobs.put(None)  # seen again by the loop, after this batch
                break
            jobs.append(job)
            count += self.size(job.item)
        return jobs

    def _run(self) -> None:
        while (first := self._jobs.get()) is not None:
            jobs = self._gather(first)
            try:
                results = self.work([job.item for job in jobs])
            except Exception as exc:  # noqa: BLE001 - each waiting request gets the error, the thread goes on
                for job in jobs:
                    job.done.set_exception(exc)
                continue
            self.on_batch(sum(self.size(job.item) for job in jobs))
            for job, result in zip(jobs, results, strict=True):
                job.done.set_result(result)


def _bounds(sizes: list[int]) -> list[tuple[int, int]]:
    ends = np.cumsum(sizes).tolist()
    return list(zip([0, *ends[:-1]], ends, strict=True))


def model_work(model: Model) -> Callable[[list[torch.Tensor]], list[tuple[np.ndarray, np.ndarray]]]:
    """One forward pass over every request's faces; each request gets its own rows of (embeddings, quality)."""

    def work(batches: list[torch.Tensor]) -> list[tuple[np.ndarray, np.ndarray]]:
        embeddings, quality = model(torch.cat(batches))
        return [(embeddings[lo:hi], quality[lo:hi]) for lo, hi in _bounds([len(b) for b in batches])]

    return work


def search_work(search: Search) -> Callable[[list[Query]], list[list[list[Match]]]]:
    """One gallery search per top_k over every request's queries. A flat index reads every stored face once a
    search, however many queries it holds (faiss at 10^5 x 512: 18 ms for 1 query, 26 ms for 16), so merged
    searches multiply what a large gallery answers; each request's answer is what it would get alone."""

    def work(queries: list[Query]) -> list[list[list[Match]]]:
        answers: list[list[list[Match]]] = [[] for _ in queries]
        for k in sorted({k for _, k in queries}):
            mine = [n for n, (_, top_k) in enumerate(queries) if top_k == k]
            found = search(np.concatenate([queries[n][0] for n in mine]), k)
            for n, (lo, hi) in zip(mine, _bounds([len(queries[n][0]) for n in mine]), strict=True):
                answers[n] = found[lo:hi]
        return answers

    return work


def query_rows(query: Query) -> int:
    return len(query[0])
