"""What the server does, apart from HTTP: the model (batched), photos to faces, the gallery and the threshold.
Every score it gives comes with its metric, the decision, the threshold and where the threshold came from."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from facecli.align.warp import TEMPLATES
from facecli.data.images import decode
from facecli.embed.auto_backend import open_model
from facecli.embed.backends import Backend
from facecli.embed.faces import Face, FaceCrops, NoFaceFound
from facecli.errors import FaceCliError, unknown_choice
from facecli.identification.model_identity import model_identity
from facecli.numbers import check_threshold
from facecli.runtime import Runtime
from facecli.serving.api_errors import ApiError, bad_request, not_found, unprocessable
from facecli.serving.batcher import MAX_BATCH, MAX_WAIT_MS, Batcher, model_work, query_rows, search_work
from facecli.serving.store import Match, open_gallery
from facecli.serving.transfer import import_index
from facecli.serving.uploads import Upload

if TYPE_CHECKING:
    from facecli.serving.milvus_gallery import MilvusGallery
    from facecli.serving.sqlite_gallery import SqliteGallery

log = logging.getLogger(__name__)
METRIC = "cosine"
MAX_TOP_K = 100
MAX_SUBJECT_CHARS = 200
NO_FACE_HINT = "; if it is already a face crop, pass aligned=true"


@dataclass
class ServeSettings:
    """What `facecli serve` was started with (everything but HTTP)."""

    checkpoint: Path
    runtime: Runtime
    backend: Backend = "auto"
    gallery: str | None = None
    flip: bool = False
    template: str | None = None
    keep_crops: bool = False
    reembed: bool = False
    import_index: Path | None = None
    max_batch: int = MAX_BATCH
    max_wait_ms: float = MAX_WAIT_MS


def not_ready(batchers: list[Batcher], gallery: SqliteGallery | MilvusGallery | None) -> str | None:
    """Why requests cannot be answered now (a batcher's thread stopped, a gallery that cannot be read), or None."""
    for batcher in batchers:
        if not batcher.running:
            return f"the {batcher.name} thread has stopped"
    if gallery is not None:
        try:
            gallery.count()
        except Exception as exc:  # noqa: BLE001 - whatever the store raises (SQLite, OSError, Milvus), it is down
            return f"the gallery cannot be read: {exc}"
    return None


class FaceService:
    """The loaded model and gallery, answering the API's questions as plain dicts."""

    def __init__(self, settings: ServeSettings) -> None:
        checkpoint = Path(settings.checkpoint)
        if not checkpoint.is_file():
            raise FaceCliError(f"{checkpoint}: no such model file")
        if settings.template is not None and settings.template not in TEMPLATES:
            raise unknown_choice("template", settings.template, TEMPLATES)
        self.settings = settings
        self.model = open_model(checkpoint, settings.backend, settings.runtime)
        self.config = self.model.config
        self.model_hash = model_identity(checkpoint)
        self._photos = FaceCrops(self.config, "auto", settings.template)
        self._crops = FaceCrops(self.config, "never", settings.template)
        flip = settings.flip
        self.batcher = Batcher(
            model_work(lambda batch: self.model.embed_scored(batch, flip)), settings.max_batch, settings.max_wait_ms
        )
        self.gallery = self.searcher = None
        if settings.gallery is not None:
            self.gallery = open_gallery(
                settings.gallery, self.model_hash, self.config.embedding_size, reembed=settings.reembed
            )
            self.searcher = Batcher(
                search_work(self.gallery.search), settings.max_batch, settings.max_wait_ms, "gallery's search",
                size=query_rows,
            )  # fmt: skip
            if self.gallery.stale_model is not None:
                self._reembed()
        if settings.import_index is not None:
            added, skipped = import_index(self.require_gallery(), settings.import_index, checkpoint, settings.flip)
            log.info(f"{settings.import_index}: {added} faces enrolled, {skipped} subjects already in the gallery")

    # --- threshold

    def threshold(self, given: float | None = None) -> tuple[float | None, str]:
        if given is not None:
            check_threshold(given, METRIC)
            return given, "request"
        calibrated = self.config.threshold_for(METRIC)
        return (calibrated, "model") if calibrated is not None else (None, "none")

    def model_info(self) -> dict:
        threshold, source = self.threshold()
        config = self.config
        return {
            "model_hash": self.model_hash,
            "checkpoint": self.settings.checkpoint.name,
            "backbone": config.backbone,
            "embedding_size": config.embedding_size,
            "backend": self.model.describe(),
            "preprocessing": {
                "input_size": list(config.input_size), "mean": list(config.mean), "std": list(config.std),
                "channel_order": config.channel_order, "resize": config.resize, "flip": self.settings.flip,
                "alignment": self._photos.template,
            },
            "metric": METRIC,
            "threshold": threshold,
            "threshold_source": source,
            "calibration": (
                "chosen on verification pairs the model did not train on (train's held-out identities, or "
                "facecli sweep --save-threshold), stored in the model file" if source == "model" else
                "none: calibrate one with facecli sweep --save-threshold, or pass threshold= per request"
            ),
            "quality": config.quality,
            "batching": {"max_batch": self.settings.max_batch, "max_wait_ms": self.settings.max_wait_ms},
        }  # fmt: skip

    # --- faces and embeddings

    def faces(self, upload: Upload, aligned: bool) -> list[Face]:
        """Every face of an uploaded image, largest first; a 422 when a photo has none."""
        image = upload.image()
        try:
            return (self._crops if aligned else self._photos).found(image, upload.name, NO_FACE_HINT)
        except NoFaceFound as exc:
            raise unprocessable("no_face", str(exc)) from None

    def embed_faces(self, faces: list[Face]) -> tuple[np.ndarray, np.ndarray]:
        batch = self.config.preprocessing.batch([face.crop for face in faces])
        embeddings, quality = self.batcher(batch)
        if not np.isfinite(embeddings).all():
            raise ApiError(500, "model_failed", "the model gave NaN or inf for this image")
        return embeddings, quality

    def _quality(self, value: float | None) -> float | None:
        return None if self.config.quality is None or value is None else round(float(value), 4)

    def _described(self, face: Face, quality: float | None) -> dict:
        return {"box": face.box, "score": face.score, "landmarks": face.landmarks, "quality": self._quality(quality)}

    def verify(self, a: Upload, b: Upload, aligned: bool, threshold: float | None = None) -> dict:
        """As `facecli compare A B --json`: the largest face of each, scored by cosine and decided."""
        limit, source = self.threshold(threshold)
        found = {name: self.faces(upload, aligned) for name, upload in (("a", a), ("b", b))}
        embeddings, quality = self.embed_faces([found["a"][0], found["b"][0]])
        score = float(embeddings[0] @ embeddings[1])
        pair = {
            "a": a.name, "b": b.name, "score": round(score, 6), "metric": METRIC,
            "same": None if limit is None else score > limit, "threshold": limit,
            "quality_a": self._quality(quality[0]), "quality_b": self._quality(quality[1]), "refused": None,
        }  # fmt: skip
        faces = {
            name: [self._described(face, quality[i] if n == 0 else None) for n, face in enumerate(found[name])]
            for i, name in enumerate(("a", "b"))
        }  # only the largest face of each is embedded
        return {"threshold_source": source, "pairs": [pair], "faces": faces}

    def embed(self, uploads: list[Upload], aligned: bool) -> dict:
        """Every face of every image with its embedding."""
        images = []
        for upload in uploads:
            faces = self.faces(upload, aligned)
            embeddings, quality = self.embed_faces(faces)
            images.append({
                "image": upload.name,
                "faces": [{**self._described(face, q), "embedding": [round(float(v), 7) for v in e]}
                          for face, e, q in zip(faces, embeddings, quality, strict=True)],
            })  # fmt: skip
        return {"model_hash": self.model_hash, "metric": METRIC, "images": images}

    # --- the gallery

    def gallery_or_404(self):  # noqa: ANN202
        """The gallery, for a request; a 404 when the server has none."""
        if self.gallery is None:
            raise not_found("this server has no gallery (start it with --gallery DIR)")
        return self.gallery

    def require_gallery(self):  # noqa: ANN202
        if self.gallery is None:
            raise FaceCliError("--import-index and --export-index need --gallery")
        return self.gallery

    def enrol(self, subject: str, upload: Upload, aligned: bool) -> dict:
        """Store the largest face of the image as a face of `subject` (created when new)."""
        check_subject(subject)
        gallery = self.gallery_or_404()
        faces = self.faces(upload, aligned)
        embeddings, quality = self.embed_faces(faces[:1])
        crop = _png(faces[0].crop) if self.settings.keep_crops else None
        quality_value = self._quality(quality[0])
        (face_id,) = gallery.add_faces(subject, embeddings, [quality_value], [crop])
        return {
            "face_id": face_id,
            "subject": subject,
            "faces_found": len(faces),
            **self._described(faces[0], quality[0]),
        }

    def identify(self, uploads: list[Upload], aligned: bool, top_k: int, threshold: float | None) -> dict:
        """Open-set search of every face of every image: the best subjects, `unknown` under the threshold."""
        decision = self._decision(top_k, threshold)
        answers = []
        for upload in uploads:
            faces = self.faces(upload, aligned)
            embeddings, quality = self.embed_faces(faces)
            results = self._search(embeddings, top_k, decision["threshold"])
            for face, q, answer in zip(faces, quality, results, strict=True):
                answer.update(self._described(face, q))
            answers.append({"image": upload.name, "faces": results})
        return {**decision, "images": answers}

    def search(self, embeddings: object, top_k: int, threshold: float | None) -> dict:
        """Open-set search of client embeddings (L2-normalised here)."""
        decision = self._decision(top_k, threshold)
        try:
            vectors = np.asarray(embeddings, np.float32)
        except (TypeError, ValueError):
            raise bad_request("embeddings must be a list of lists of numbers") from None
        if vectors.ndim != 2 or vectors.shape[1] != self.config.embedding_size or not len(vectors):
            shape = "x".join(map(str, vectors.shape))
            raise bad_request(f"embeddings must be N x {self.config.embedding_size} (N >= 1), got {shape}")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if not np.isfinite(vectors).all() or (norms == 0).any():
            raise bad_request("embeddings must be finite and not zero")
        return {**decision, "results": self._search(vectors / norms, top_k, decision["threshold"])}

    def _decision(self, top_k: int, threshold: float | None) -> dict:
        if not 1 <= top_k <= MAX_TOP_K:
            raise bad_request(f"top_k must be between 1 and {MAX_TOP_K}, got {top_k}")
        limit, source = self.threshold(threshold)
        return {"metric": METRIC, "threshold": limit, "threshold_source": source}

    @property
    def batchers(self) -> list[Batcher]:
        return [self.batcher] if self.searcher is None else [self.batcher, self.searcher]

    def _search(self, embeddings: np.ndarray, top_k: int, threshold: float | None) -> list[dict]:
        self.gallery_or_404()
        return [_decided(found, threshold) for found in self.searcher((embeddings, top_k))]

    def _reembed(self) -> None:
        """--reembed: the stored crops through this model, the gallery then belongs to it."""
        gallery = self.gallery
        crops = gallery.crops()
        missing = sum(crop is None for _, crop in crops)
        if missing:
            raise FaceCliError(
                f"{self.settings.gallery}: --reembed needs every face's crop, and {missing} of {len(crops)} were "
                "enrolled without --keep-crops; enrol them again instead"
            )
        vectors = {}
        for start in range(0, len(crops), 64):
            chunk = crops[start : start + 64]
            images = [decode(crop) for _, crop in chunk]
            embeddings, _ = self.model.embed_scored(self.config.preprocessing.batch(images), self.settings.flip)
            vectors.update({face_id: e for (face_id, _), e in zip(chunk, embeddings, strict=True)})
        gallery.replace_embeddings(self.model_hash, vectors)

    def close(self) -> None:
        for batcher in self.batchers:
            batcher.close()
        if self.gallery is not None:
            self.gallery.close()


def check_subject(name: str) -> None:
    if not name or len(name) > MAX_SUBJECT_CHARS or not name.isprintable() or name != name.strip():
        raise bad_request(
            f"a subject is 1 to {MAX_SUBJECT_CHARS} printable characters without surrounding spaces, got {name!r}"
        )


def _decided(matches: list[Match], threshold: float | None) -> dict:
    best = matches[0] if matches else None
    if best is None:
        identity = "unknown"
    elif threshold is None:
        identity = None  # no decision without a threshold: the scores are given
    else:
        identity = best.subject if best.score > threshold else "unknown"
    return {
        "identity": identity,
        "matches": [{"subject": m.subject, "face_id": m.face_id, "score": round(m.score, 6)} for m in matches],
    }


def _png(crop: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    return data.tobytes()
