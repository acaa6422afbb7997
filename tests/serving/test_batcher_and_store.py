"""The batchers merge concurrent requests and hand each its own rows (forward passes) or answers (gallery searches,
the same as alone); the SQLite gallery sees other processes' writes, switches to IVF above its exact limit with
the same answers, and refuses another model."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import facecli.serving.sqlite_gallery as sqlite_gallery
from facecli.errors import FaceCliError
from facecli.serving.batcher import Batcher, model_work, query_rows, search_work
from facecli.serving.sqlite_gallery import SqliteGallery


def _model(calls):
    def run(batch):
        calls.append(len(batch))
        return batch.flatten(1).numpy() * 2, batch[:, 0, 0, 0].numpy()

    return model_work(run)


def _concurrently(count, request):
    start = threading.Barrier(count)

    def run(n):
        start.wait()
        request(n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_concurrent_requests_share_forward_passes_and_get_their_own_rows():
    calls = []
    batcher = Batcher(_model(calls), max_batch=64, max_wait_ms=200)
    results = {}

    def request(n):
        results[n] = batcher(torch.full((n % 3 + 1, 1, 1, 2), float(n)))

    _concurrently(8, request)
    batcher.close()
    assert sum(calls) == sum(n % 3 + 1 for n in range(8)) and len(calls) < 8  # merged
    for n, (embeddings, quality) in results.items():
        assert embeddings.shape == (n % 3 + 1, 2) and (embeddings == 2 * n).all() and (quality == n).all()


def test_batching_off_runs_each_request_alone_and_errors_reach_every_waiter():
    calls = []
    alone = Batcher(_model(calls), max_batch=1)
    alone(torch.zeros(2, 1, 1, 2))
    alone(torch.zeros(3, 1, 1, 2))
    assert calls == [2, 3]

    def broken(batch):
        raise RuntimeError("model failed")

    batcher = Batcher(model_work(broken), max_batch=8, max_wait_ms=1)
    with pytest.raises(RuntimeError, match="model failed"):
        batcher(torch.zeros(1, 1, 1, 2))
    with pytest.raises(RuntimeError, match="model failed"):  # the thread lives on
        batcher(torch.zeros(1, 1, 1, 2))
    batcher.close()


def test_concurrent_identifies_share_gallery_searches_and_get_what_they_would_alone(tmp_path):
    rng = np.random.default_rng(3)
    gallery = SqliteGallery(tmp_path, "m", 8)
    vectors = _unit(rng, 60)
    for subject in range(20):
        gallery.add_faces(f"s{subject}", vectors[subject * 3 : subject * 3 + 3], [None] * 3, [None] * 3)
    searches = []

    def search(queries, k):
        searches.append((len(queries), k))
        return gallery.search(queries, k)

    requests = {n: (_unit(rng, n % 3 + 1), 1 + n % 2 * 4) for n in range(12)}  # top_k 1 or 5
    alone = {n: gallery.search(*request) for n, request in requests.items()}
    batcher = Batcher(search_work(search), max_batch=64, max_wait_ms=200, size=query_rows)
    runs, batched = [], {}
    batcher.on_batch = runs.append

    def request(n):
        batched[n] = batcher(requests[n])

    _concurrently(12, request)
    batcher.close()
    gallery.close()
    assert sum(runs) == sum(q for q, _ in searches) == sum(len(q) for q, _ in requests.values())
    assert len(runs) < 12 and len(searches) <= 2 * len(runs)  # merged, one search per top_k of a batch
    assert batched == alone


def _unit(rng, n, d=8):
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_two_processes_on_one_gallery_see_each_others_writes(tmp_path):
    rng = np.random.default_rng(0)
    writer, reader = SqliteGallery(tmp_path, "m1", 8), SqliteGallery(tmp_path, "m1", 8)
    vectors = _unit(rng, 6)
    ids = writer.add_faces("ann", vectors[:3], [None] * 3, [None] * 3)
    writer.add_faces("ben", vectors[3:], [None] * 3, [None] * 3)
    (found,) = reader.search(vectors[:1], 2)
    assert found[0].subject == "ann" and found[0].face_id == ids[0] and found[0].score == pytest.approx(1, abs=1e-5)
    assert writer.delete_subject("ann") == 3 and writer.delete_subject("ann") is None
    (found,) = reader.search(vectors[:1], 2)
    assert [m.subject for m in found] == ["ben"]
    writer.close()
    reader.close()
    with pytest.raises(FaceCliError, match="built with model m1"):
        SqliteGallery(tmp_path, "m2", 8)


def test_above_the_exact_limit_an_ivf_index_answers_as_the_flat_one(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 600, 16)
    names = [f"s{i % 150}" for i in range(600)]
    flat = SqliteGallery(tmp_path / "flat", "m", 16)
    for name in sorted(set(names)):
        rows = [i for i, n in enumerate(names) if n == name]
        flat.add_faces(name, vectors[rows], [None] * len(rows), [None] * len(rows))
    queries = vectors[:20] + 0.05 * _unit(rng, 20, 16)
    expected = [[m.subject for m in found] for found in flat.search(queries, 3)]
    flat.close()
    monkeypatch.setattr(sqlite_gallery, "EXACT_LIMIT", 100)
    reopened = SqliteGallery(tmp_path / "flat", "m", 16)  # rebuilt from SQLite: IVF now
    assert sqlite_gallery._index_kind(reopened._index) == "ivf"
    approximate = [[m.subject for m in found] for found in reopened.search(queries, 3)]
    agree = np.mean([a[0] == e[0] for a, e in zip(approximate, expected, strict=True)])
    assert agree >= 0.95
    reopened.close()


def test_not_ready_names_a_stopped_model_thread_or_a_gallery_that_cannot_be_read(tmp_path):
    from facecli.serving.service import not_ready

    batcher, gallery = Batcher(_model([]), max_batch=8), SqliteGallery(tmp_path, "m", 8)
    searcher = Batcher(search_work(gallery.search), max_batch=8, name="gallery's search", size=query_rows)
    assert not_ready([batcher, searcher], gallery) is None
    assert not_ready([Batcher(_model([]), max_batch=1)], None) is None
    gallery.close()
    assert "the gallery cannot be read: " in not_ready([batcher, searcher], gallery)
    searcher.close()
    assert not_ready([batcher, searcher], None) == "the gallery's search thread has stopped"
    batcher.close()
    assert not_ready([batcher], None) == "the model's batching thread has stopped"


def test_milvus_listings_page_in_order_past_one_batch(tmp_path, monkeypatch):
    pytest.importorskip("milvus_lite")
    import facecli.serving.milvus_gallery as milvus_gallery

    monkeypatch.setattr(milvus_gallery, "ITERATOR_BATCH", 4)  # listings span several of Milvus's batches
    gallery = milvus_gallery.MilvusGallery(str(tmp_path / "g.db"), "m", 8)
    names = [f"s{n:02d}" for n in np.random.default_rng(0).permutation(23)]  # enrolled out of order
    for name in names:
        gallery.add_subject(name)
        gallery.add_faces(name, np.eye(8, dtype=np.float32)[:1], [None], [None])
    pages, after = [], ""
    while page := gallery.subjects(after, 5):
        pages.append([s.name for s in page])
        after = page[-1].name
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3] and sum(pages, []) == sorted(names)
    assert [s.name for s in gallery.subjects()] == sorted(names)  # every subject, as `--import-index` reads them
    ids = [f.id for f in gallery.faces()]
    assert ids == sorted(ids) and len(ids) == 23 and [f.id for f in gallery.faces(after=ids[9], limit=6)] == ids[10:16]
    gallery.close()
