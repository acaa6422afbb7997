"""The server's gallery in Milvus, through its official client (pymilvus): `milvus://HOST:PORT/COLLECTION` for a
Milvus server or cluster, or a `.db` file for Milvus Lite (the same API, in process).

Milvus holds the faces (id, subject, embedding, quality, time) in COLLECTION, the subjects in
COLLECTION_subjects, and the model the gallery belongs to in COLLECTION_meta. Several
facecli servers may share one Milvus: it is the only state. An approximate index may distort scores, so the
candidates it returns are scored again exactly, by cosine of their stored vectors, before the threshold.
"""

from __future__ import annotations

import threading
import time
from urllib.parse import urlparse

import numpy as np

from facecli.errors import FaceCliError
from facecli.serving.store import MILVUS_SCHEME, Match, StoredFace, Subject, best_per_subject, model_mismatch

CANDIDATES_PER_RESULT = 20  # hits fetched per asked-for subject: a subject's faces may fill the top
ITERATOR_BATCH = 1000  # rows a listing reads from Milvus at a time
PLACEHOLDER = [0.0, 0.0]  # the subjects collection's vector (Milvus needs one in every collection)
# faces inserted between flushes: Milvus searches unflushed (growing) segments by brute force, and on Milvus Lite
# that was slow (20,000 faces of 512-d unflushed: 1.1 s a search; flushed: 0.14 s; a flush: 1.7 s)
FLUSH_EVERY = 1000


class MilvusGallery:
    """Subjects and their faces in Milvus, for the model named `model_hash`, searched by cosine."""

    def __init__(self, where: str, model_hash: str, embedding_size: int) -> None:
        from pymilvus import MilvusClient

        self.where, self.model_hash, self.size = where, model_hash, embedding_size
        self.stale_model = None
        if where.startswith(MILVUS_SCHEME):
            address = urlparse(where)
            self.collection = address.path.strip("/") or "faces"
            uri = f"http://{address.hostname}:{address.port or 19530}"
        else:
            self.collection, uri = "faces", where
        self.subjects_collection = f"{self.collection}_subjects"
        self.meta_collection = f"{self.collection}_meta"
        try:
            self.client = MilvusClient(uri)
        except Exception as exc:  # noqa: BLE001 - pymilvus raises its own kinds for an unreachable server
            raise FaceCliError(f"{where}: cannot open Milvus ({' '.join(str(exc).split())[:200]})") from None
        self._lock = threading.Lock()  # Milvus Lite's client is not safe across threads
        self._unflushed = 0
        self._claim()

    def _claim(self) -> None:
        """Create the collections of a new gallery for this model; refuse one of another model."""
        client = self.client
        if not client.has_collection(self.collection):
            client.create_collection(
                self.collection, dimension=self.size, metric_type="COSINE", auto_id=True, id_type="int",
                consistency_level="Strong",
            )  # fmt: skip
            self._keyed_collection(self.subjects_collection, "name")
            self._keyed_collection(self.meta_collection, "key")
            client.insert(
                self.meta_collection, [{"key": "model_hash", "vector": PLACEHOLDER, "value": self.model_hash}]
            )
        for name in (self.collection, self.subjects_collection, self.meta_collection):
            client.load_collection(name)  # a reopened gallery's collections start released
        stored = client.get(self.meta_collection, ids=["model_hash"], output_fields=["value"])
        stored_hash = stored[0]["value"] if stored else None
        if stored_hash != self.model_hash:
            raise model_mismatch(self.where, stored_hash, self.model_hash)

    def _keyed_collection(self, name: str, key: str) -> None:
        """A collection of rows keyed by a string (Milvus needs a vector in every collection: a placeholder)."""
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
        schema.add_field(key, DataType.VARCHAR, is_primary=True, max_length=256)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=len(PLACEHOLDER))
        index = self.client.prepare_index_params()
        index.add_index(field_name="vector", index_type="FLAT", metric_type="L2")
        self.client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")

    def add_subject(self, name: str) -> bool:
        with self._lock:
            if self.client.get(self.subjects_collection, ids=[name]):
                return False
            self.client.insert(
                self.subjects_collection, [{"name": name, "vector": PLACEHOLDER, "created": time.time()}]
            )
            return True

    def add_faces(
        self, subject: str, embeddings: np.ndarray, quality: list[float | None], crops: list[bytes | None]
    ) -> list[int]:
        """Store faces of `subject` (created when new); crops are not kept in Milvus."""
        self.add_subject(subject)
        now = time.time()
        rows = [
            {"vector": [float(v) for v in vector], "subject": subject, "quality": -1.0 if q is None else float(q),
             "created": now}
            for vector, q in zip(embeddings, quality, strict=True)
        ]  # fmt: skip
        with self._lock:
            ids = [int(i) for i in self.client.insert(self.collection, rows)["ids"]]
            self._unflushed += len(ids)
            if self._unflushed >= FLUSH_EVERY:
                self.client.flush(self.collection)
                self._unflushed = 0
            return ids

    def delete_subject(self, name: str) -> int | None:
        with self._lock:
            if not self.client.get(self.subjects_collection, ids=[name]):
                return None
            faces = self._count(f"subject == {_quoted(name)}")
            self.client.delete(self.collection, filter=f"subject == {_quoted(name)}")
            self.client.delete(self.subjects_collection, ids=[name])
            return faces

    def delete_face(self, face_id: int) -> bool:
        with self._lock:
            if not self.client.get(self.collection, ids=[face_id]):
                return False
            self.client.delete(self.collection, ids=[face_id])
            return True

    def _count(self, condition: str) -> int:
        rows = self.client.query(self.collection, filter=condition, output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def subjects(self, after: str = "", limit: int = -1) -> list[Subject]:
        """Subjects by name, `limit` of them (-1: all) after `after`, each with its number of faces."""
        with self._lock:
            rows = self._in_key_order(self.subjects_collection, f"name > {_quoted(after)}", ["name", "created"], limit)
            return [Subject(r["name"], self._count(f"subject == {_quoted(r['name'])}"), r["created"]) for r in rows]

    def _in_key_order(self, collection: str, condition: str, fields: list[str], limit: int) -> list[dict]:
        """The first `limit` rows (-1: all) matching `condition` by primary key. A query returns at most
        16,384 rows, in no set order, so a page of a larger gallery would skip rows; Milvus's query
        iterator walks the primary key in order, a batch at a time."""
        iterator = self.client.query_iterator(
            collection, batch_size=ITERATOR_BATCH if limit < 0 else min(limit, ITERATOR_BATCH), limit=limit,
            filter=condition, output_fields=fields,
        )  # fmt: skip
        rows: list[dict] = []
        try:
            while batch := iterator.next():
                rows.extend(batch)
        finally:
            iterator.close()
        return rows

    def subject(self, name: str) -> Subject | None:
        with self._lock:
            rows = self.client.get(self.subjects_collection, ids=[name], output_fields=["name", "created"])
            return Subject(name, self._count(f"subject == {_quoted(name)}"), rows[0]["created"]) if rows else None

    def faces(self, subject: str | None = None, after: int = 0, limit: int = -1) -> list[StoredFace]:
        """Faces by id (of one subject, or all), `limit` of them (-1: all) after the id `after`."""
        condition = f"id > {int(after)}" + ("" if subject is None else f" and subject == {_quoted(subject)}")
        with self._lock:
            rows = self._in_key_order(self.collection, condition, ["id", "subject", "quality", "created"], limit)
        return [
            StoredFace(r["id"], r["subject"], None if r["quality"] < 0 else r["quality"], r["created"]) for r in rows
        ]

    def count(self) -> int:
        with self._lock:
            return self._count("")

    def search(self, queries: np.ndarray, k: int) -> list[list[Match]]:
        """Per query, the k best subjects: Milvus's candidates, scored again exactly by cosine."""
        with self._lock:
            hits = self.client.search(
                self.collection, data=[q.tolist() for q in queries], limit=k * CANDIDATES_PER_RESULT,
                output_fields=["subject", "vector"], search_params={"metric_type": "COSINE"},
            )  # fmt: skip
        found = []
        for query, rows in zip(queries, hits, strict=True):
            if not rows:
                found.append([])
                continue
            vectors = np.array([row["entity"]["vector"] for row in rows], np.float32)
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            exact = vectors @ query
            order = np.argsort(-exact, kind="stable")
            ids = np.array([rows[i]["id"] for i in order])
            subject_of = {int(row["id"]): row["entity"]["subject"] for row in rows}
            found.append(best_per_subject(exact[order], ids, subject_of, k))
        return found

    def close(self) -> None:
        with self._lock:
            if self._unflushed:
                self.client.flush(self.collection)
            self.client.close()


def _quoted(value: str) -> str:
    """A string literal for a Milvus filter expression."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
