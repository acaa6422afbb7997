"""Requests merged into batches server-side: the model runs on one thread, and each forward pass takes every
face that queued while the previous one ran (up to a batch size), waiting up to `max_wait_ms` for more.

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

# measured on the 2-core CPU (benchmarks/serve.py, RESULTS.md "serve"): waiting for more faces only adds latency
# there (identify at 1 client: 96 requests/s waiting 0 ms, 73 at 2 ms, 55 at 5 ms; at 16 clients 133, 122, 104),
# because ONNX Runtime runs a face as fast alone as in a batch (mobilenet 160 px: 321 img/s at 1, 296 at 32);
# what queued while the model ran is batched all the same. A GPU, where batches pay, may want a wait.
MAX_BATCH = 32
MAX_WAIT_MS = 0.0

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

    @property
    def running(self) -> bool:
        """Whether a request would be answered: unbatched, or the model's thread still up."""
        return self._thread is None or self._thread.is_alive()

    def close(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()

    def _gather(self, first: _Job) -> list[_Job]:
        jobs, count = [first], len(first.batch)
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
