"""The server's gallery on one machine: SQLite (WAL) holds subjects, faces and their embeddings, and is the
truth; a faiss index beside it, keyed by face id, is rebuilt from it whenever it is missing or stale.

Every write is one transaction committed with `synchronous=FULL` before the reply, so an acknowledged
enrolment or deletion survives a crash. Deleting overwrites what was deleted (`secure_delete`) and then
truncates the write-ahead log, so a forgotten face's embedding and crop are in no file of the gallery.
Several server processes may share one gallery: each applies the others' writes, from the `changes` table,
before it searches.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np

from facecli.errors import FaceCliError
from facecli.fileio import atomic_path, write_text_atomic
from facecli.serving.store import Match, StoredFace, Subject, best_per_subject, model_mismatch

DATABASE, INDEX, INDEX_STAMP = "gallery.sqlite", "faces.faiss", "faces.faiss.json"
# faces up to which every search is exact (faiss flat); above, an IVF index is searched (its scores are exact
# inner products of the candidates it finds, only its recall is approximate): benchmarks/serve.py measured
# exact search at 10^5 faces of 512-d inside the p99 target, so the switch comes later (RESULTS.md, "serve")
EXACT_LIMIT = 200_000
IVF_PROBES = 32
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subjects (name TEXT PRIMARY KEY, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY AUTOINCREMENT, subject TEXT NOT NULL REFERENCES subjects(name),
    embedding BLOB NOT NULL, quality REAL, created REAL NOT NULL, crop BLOB);
CREATE INDEX IF NOT EXISTS faces_by_subject ON faces(subject);
CREATE TABLE IF NOT EXISTS changes (generation INTEGER PRIMARY KEY AUTOINCREMENT, face INTEGER NOT NULL,
    added INTEGER NOT NULL);
"""


class SqliteGallery:
    """Subjects and their faces in `folder`, for the model named `model_hash`, searched by cosine."""

    def __init__(self, folder: str | Path, model_hash: str, embedding_size: int, reembed: bool = False) -> None:
        self.folder = Path(folder)
        self.size = embedding_size
        self.where = str(self.folder / DATABASE)
        self._lock = threading.RLock()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.where, check_same_thread=False, isolation_level=None, timeout=30)
            for pragma in ("journal_mode=WAL", "synchronous=FULL", "secure_delete=ON", "foreign_keys=ON"):
                self._db.execute(f"PRAGMA {pragma}")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise FaceCliError(f"{self.where}: cannot open the gallery ({' '.join(str(exc).split())[:200]})") from None
        self.model_hash = model_hash
        self.stale_model = self._claim(model_hash, embedding_size, reembed)
        self._index, self._subject_of, self._generation = None, {}, 0
        if self.stale_model is None:  # else its vectors are another model's, of another size maybe
            self._load_index()

    # --- the model the gallery belongs to

    def _claim(self, model_hash: str, embedding_size: int, reembed: bool) -> str | None:
        """Mark a new gallery as this model's; for one of another model, its model (with `reembed`) or an error."""
        with self._write() as db:
            stored = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if not stored:
                db.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [
                        ("model_hash", model_hash),
                        ("embedding_size", str(embedding_size)),
                        ("created", str(time.time())),
                    ],
                )
            elif stored.get("model_hash") != model_hash:
                if not reembed:
                    raise model_mismatch(self.where, stored.get("model_hash"), model_hash)
                return stored.get("model_hash")
        return None

    # --- writes: one durable transaction each

    def _write(self) -> _Transaction:
        return _Transaction(self._db, self._lock)

    def add_subject(self, name: str) -> bool:
        """Create a subject; False when it exists already."""
        with self._write() as db:
            return db.execute("INSERT OR IGNORE INTO subjects VALUES (?, ?)", (name, time.time())).rowcount == 1

    def add_faces(
        self, subject: str, embeddings: np.ndarray, quality: list[float | None], crops: list[bytes | None]
    ) -> list[int]:
        """Store faces of `subject` (created when new); their ids, once committed."""
        now = time.time()
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO subjects VALUES (?, ?)", (subject, now))
            ids = []
            for vector, score, crop in zip(embeddings, quality, crops, strict=True):
                blob = np.ascontiguousarray(vector, np.float32).tobytes()
                row = db.execute(
                    "INSERT INTO faces (subject, embedding, quality, created, crop) VALUES (?, ?, ?, ?, ?)",
                    (subject, blob, score, now, crop),
                )
                ids.append(row.lastrowid)
            db.executemany("INSERT INTO changes (face, added) VALUES (?, 1)", [(i,) for i in ids])
        self.refresh()
        return ids

    def delete_subject(self, name: str) -> int | None:
        """Forget a subject and every face of it; the faces removed, or None when there is no such subject."""
        with self._write() as db:
            if db.execute("SELECT 1 FROM subjects WHERE name = ?", (name,)).fetchone() is None:
                return None
            ids = [row[0] for row in db.execute("SELECT id FROM faces WHERE subject = ?", (name,))]
            db.execute("DELETE FROM faces WHERE subject = ?", (name,))
            db.execute("DELETE FROM subjects WHERE name = ?", (name,))
            db.executemany("INSERT INTO changes (face, added) VALUES (?, 0)", [(i,) for i in ids])
        self._forgotten()
        return len(ids)

    def delete_face(self, face_id: int) -> bool:
        """Forget one face; False when there is no such face."""
        with self._write() as db:
            if db.execute("DELETE FROM faces WHERE id = ?", (face_id,)).rowcount == 0:
                return False
            db.execute("INSERT INTO changes (face, added) VALUES (?, 0)", (face_id,))
        self._forgotten()
        return True

    def _forgotten(self) -> None:
        """After a deletion: no copy of what was deleted left in the log or in a saved index."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            (self.folder / INDEX).unlink(missing_ok=True)
            (self.folder / INDEX_STAMP).unlink(missing_ok=True)
        self.refresh()

    # --- reads

    def subjects(self, after: str = "", limit: int = -1) -> list[Subject]:
        """Subjects by name, `limit` of them (all: -1) after `after`, each with its number of faces."""
        with self._lock:
            rows = self._db.execute(
                "SELECT s.name, s.created, (SELECT COUNT(*) FROM faces f WHERE f.subject = s.name) FROM subjects s "
                "WHERE s.name > ? ORDER BY s.name LIMIT ?",
                (after, limit),
            ).fetchall()
        return [Subject(name, faces, created) for name, created, faces in rows]

    def subject(self, name: str) -> Subject | None:
        with self._lock:
            row = self._db.execute(
                "SELECT created, (SELECT COUNT(*) FROM faces WHERE subject = ?) FROM subjects WHERE name = ?",
                (name, name),
            ).fetchone()
        return None if row is None else Subject(name, row[1], row[0])

    def faces(self, subject: str | None = None, after: int = 0, limit: int = -1) -> list[StoredFace]:
        """Faces by id (of one subject, or all), `limit` of them (all: -1) after the id `after`."""
        query = "SELECT id, subject, quality, created FROM faces WHERE id > ?"
        with self._lock:
            if subject is None:
                rows = self._db.execute(query + " ORDER BY id LIMIT ?", (after, limit)).fetchall()
            else:
                rows = self._db.execute(query + " AND subject = ? ORDER BY id LIMIT ?", (after, subject, limit))
                rows = rows.fetchall()
        return [StoredFace(*row) for row in rows]

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM faces").fetchone()[0]

    def embeddings(self) -> tuple[np.ndarray, list[int], list[str]]:
        """Every face's embedding, id and subject (for export)."""
        with self._lock:
            rows = self._db.execute("SELECT id, subject, embedding FROM faces ORDER BY id").fetchall()
        vectors = np.frombuffer(b"".join(r[2] for r in rows), np.float32).reshape(len(rows), self.size)
        return vectors, [r[0] for r in rows], [r[1] for r in rows]

    def crops(self) -> list[tuple[int, bytes | None]]:
        with self._lock:
            return self._db.execute("SELECT id, crop FROM faces ORDER BY id").fetchall()

    def replace_embeddings(self, model_hash: str, vectors: dict[int, np.ndarray]) -> None:
        """Re-embedded faces, for another model (--reembed): one transaction, then the index is rebuilt."""
        with self._write() as db:
            db.executemany(
                "UPDATE faces SET embedding = ? WHERE id = ?",
                [(np.ascontiguousarray(v, np.float32).tobytes(), i) for i, v in vectors.items()],
            )
            db.execute("UPDATE meta SET value = ? WHERE key = 'model_hash'", (model_hash,))
            db.execute("UPDATE meta SET value = ? WHERE key = 'embedding_size'", (str(self.size),))
            db.execute("DELETE FROM changes")
        self.model_hash, self.stale_model = model_hash, None
        self._forgotten()
        self._load_index(rebuild=True)

    # --- search

    def search(self, queries: np.ndarray, k: int) -> list[list[Match]]:
        """Per query, the k best subjects (each by its best face), best first."""
        self.refresh()
        with self._lock:
            if self._index is None or self._index.ntotal == 0:
                return [[] for _ in queries]
            hits = min(self._index.ntotal, k * 20)
            scores, ids = self._index.search(np.ascontiguousarray(queries, np.float32), hits)
            subject_of = self._subject_of
            return [best_per_subject(s, i, subject_of, k) for s, i in zip(scores, ids, strict=True)]

    def refresh(self) -> None:
        """Apply every write since this process last looked (its own and other processes')."""
        with self._lock:
            changes = self._db.execute(
                "SELECT generation, face, added FROM changes WHERE generation > ? ORDER BY generation",
                (self._generation,),
            ).fetchall()
            if not changes:
                return
            removed = [face for _, face, added in changes if not added]
            added = [face for _, face, added in changes if added]
            if removed:
                self._index.remove_ids(np.array(removed, np.int64))
                for face in removed:
                    self._subject_of.pop(face, None)
            self._add_rows(self._rows(added))
            self._generation = changes[-1][0]
            if _index_kind(self._index) == "flat" and self._index.ntotal > EXACT_LIMIT:
                self._load_index(rebuild=True)

    def _rows(self, ids: list[int]) -> list[tuple[int, str, bytes]]:
        rows = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows += self._db.execute(
                f"SELECT id, subject, embedding FROM faces WHERE id IN ({marks})", chunk
            ).fetchall()
        return rows

    def _add_rows(self, rows: list[tuple[int, str, bytes]]) -> None:
        if not rows:
            return
        vectors = np.frombuffer(b"".join(r[2] for r in rows), np.float32).reshape(len(rows), self.size)
        self._index.add_with_ids(vectors, np.array([r[0] for r in rows], np.int64))
        self._subject_of.update((r[0], r[1]) for r in rows)

    def _load_index(self, rebuild: bool = False) -> None:
        """The saved index when it is this gallery's at its current generation, else one built from SQLite."""
        import faiss

        with self._lock:
            generation = self._db.execute("SELECT COALESCE(MAX(generation), 0) FROM changes").fetchone()[0]
            self._subject_of = dict(self._db.execute("SELECT id, subject FROM faces").fetchall())
            stamp = self._stamp(generation)
            saved, stamp_file = self.folder / INDEX, self.folder / INDEX_STAMP
            if not rebuild and saved.is_file() and stamp_file.is_file() and _read_json(stamp_file) == stamp:
                self._index, self._generation = faiss.read_index(str(saved)), generation
                return
            vectors, ids, _ = self.embeddings()
            self._index = _new_index(vectors, self.size)
            self._index.add_with_ids(vectors, np.array(ids, np.int64))
            self._generation = generation

    def _stamp(self, generation: int) -> dict:
        """What a saved index must match to be loaded instead of rebuilt."""
        faces = len(self._subject_of)
        kind = "flat" if faces <= EXACT_LIMIT else "ivf"
        return {"generation": generation, "model_hash": self.model_hash, "faces": faces, "kind": kind}

    def close(self) -> None:
        """Save the index beside the database (the next start loads it instead of rebuilding), then close."""
        import faiss

        with self._lock:
            self.refresh()
            if self._index is not None and self._index.ntotal:
                with atomic_path(self.folder / INDEX) as tmp:
                    faiss.write_index(self._index, str(tmp))
                write_text_atomic(self.folder / INDEX_STAMP, json.dumps(self._stamp(self._generation)))
            self._db.close()


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _index_kind(index: object) -> str:
    return "flat" if "IDMap" in type(index).__name__ else "ivf"


def _new_index(vectors: np.ndarray, size: int):  # noqa: ANN202 - a faiss index
    """Exact (flat) search up to EXACT_LIMIT faces, IVF trained on the faces above it."""
    import faiss

    if len(vectors) <= EXACT_LIMIT:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(size))
    lists = int(4 * np.sqrt(len(vectors)))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(size), size, lists, faiss.METRIC_INNER_PRODUCT)
    index.train(vectors[np.random.default_rng(0).permutation(len(vectors))[: lists * 64]])
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    index.nprobe = IVF_PROBES
    return index


class _Transaction:
    """`with`: one IMMEDIATE transaction under the store's lock, committed (durably) on success."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self.db, self.lock = db, lock

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, exc, tb) -> None:  # noqa: ANN001
        try:
            self.db.execute("ROLLBACK" if kind else "COMMIT")
        finally:
            self.lock.release()
