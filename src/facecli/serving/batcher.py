"""Requests merged into batches server-side: the faces of every request that arrives within a few milliseconds
of the first, up to a batch size, go through the model in one forward pass on one thread.

A CPU runs a batch of 16 faces faster than 16 single faces (ONNX Runtime and PyTorch both amortise their
per-call cost and use both cores on one call), so concurrent clients are served more requests per second;
`max_batch=1` turns batching off: each request then runs the model on its own thread, as a server that calls
the model per request does (the baseline benchmarks/serve.py measures against).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import torch

# measured on the 2-core CPU (benchmarks/serve.py, RESULTS.md "serve"): batches of up to 32 faces, gathered for
# at most 5 ms after the first face arrives
MAX_BATCH = 32
MAX_WAIT_MS = 5.0

Model = Callable[[torch.Tensor], tuple[np.ndarray, np.ndarray]]  # preprocessed batch -> (embeddings, quality)


@dataclass
class _Job:
    batch: torch.Tensor
    done: Future


class Batcher:
    """Runs `model` on merged batches of preprocessed faces; `embed` is safe to call from any thread."""

    def __init__(self, model: Model, max_batch: int = MAX_BATCH, max_wait_ms: float = MAX_WAIT_MS) -> None:
        self.model, self.max_batch, self.max_wait = model, max_batch, max_wait_ms / 1000
        self.on_batch: Callable[[int], None] = lambda faces: None  # told the faces of each forward pass
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        if max_batch > 1:
            self._thread = threading.Thread(target=self._run, name="facecli-batcher", daemon=True)
            self._thread.start()

    def embed(self, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and quality of a request's faces, computed together with other requests' faces."""
        if self._thread is None:
            self.on_batch(len(batch))
            return self.model(batch)
        job = _Job(batch, Future())
        self._jobs.put(job)
        return job.done.result()

    def close(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()

    def _gather(self, first: _Job) -> list[_Job]:
        jobs, count = [first], len(first.batch)
        deadline = time.monotonic() + self.max_wait
        while count < self.max_batch and (left := deadline - time.monotonic()) > 0:
            try:
                job = self._jobs.get(timeout=left)
            except queue.Empty:
                break
            if job is None:
                self._jobs.put(None)  # seen again by the loop, after this batch
                break
            jobs.append(job)
            count += len(job.batch)
        return jobs

    def _run(self) -> None:
        while (first := self._jobs.get()) is not None:
            jobs = self._gather(first)
            try:
                embeddings, quality = self.model(torch.cat([job.batch for job in jobs]))
            except Exception as exc:  # noqa: BLE001 - each waiting request gets the error, the thread goes on
                for job in jobs:
                    job.done.set_exception(exc)
                continue
            self.on_batch(len(embeddings))
            start = 0
            for job in jobs:
                end = start + len(job.batch)
                job.done.set_result((embeddings[start:end], quality[start:end]))
                start = end
