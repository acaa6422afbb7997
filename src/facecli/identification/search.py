"""`facecli index`, `identify`, `eval-identify`: build or change a gallery, search it, measure it."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from facecli.data.images import image_files
from facecli.data.scan import scan_dataset
from facecli.embed import EmbedOptions, embed_files
from facecli.embed.backends import model_config
from facecli.embed.quality import check_min_quality, low_quality
from facecli.errors import FaceCliError, unknown_choice
from facecli.fileio import check_plot_file, check_writable, same_files, write_csv_atomic
from facecli.identification.gallery import Gallery
from facecli.identification.model_identity import identities, model_identity
from facecli.numbers import COUNT, check_number, check_threshold
from facecli.writer_lock import writer_lock

UNKNOWN = "unknown"
REFUSED = "refused"  # a face under --min-quality: not matched
TEMPLATES, INDEX_TYPES = ("image", "mean"), ("flat", "ivf")
SCAN_THREADS = 4


def _model_file(
    checkpoint: str | os.PathLike[str], expected_hash: str | None = None, any_model: bool | None = None
) -> tuple[Path, str]:
    """The model file and its hash; another model than the gallery's `expected_hash` is refused, unless
    `any_model` (None where the command does not offer --any-model)."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FaceCliError(f"{checkpoint}: no such model file (pass --checkpoint)")
    if expected_hash is not None and not any_model and expected_hash not in identities(checkpoint):
        offer = ", or --any-model to search it with this one on purpose" if any_model is False else ""
        raise FaceCliError(
            f"{checkpoint} is not the model this gallery was built with (model {expected_hash}, this is "
            f"{model_identity(checkpoint)}); rebuild the gallery or pass the right --checkpoint{offer}"
        )
    return checkpoint, model_identity(checkpoint)


def _as_built(gallery: Gallery, embedding: EmbedOptions) -> EmbedOptions:
    """Queries are embedded as the gallery was: with or without the flip."""
    if embedding.flip is not None and embedding.flip != gallery.flip:
        raise FaceCliError(f"the gallery was built {'with' if gallery.flip else 'without'} --flip; queries must be too")
    return dataclasses.replace(embedding, flip=gallery.flip)


def _scan_gallery(folder: str | os.PathLike[str]) -> tuple[list[Path], list[str], int]:
    scan = scan_dataset(folder, threads=SCAN_THREADS)
    files = [f for name in scan.identities for f in scan.images[name]]
    names = [name for name in scan.identities for _ in scan.images[name]]
    return files, names, len(scan.bad_images)


def build_index(
    *,
    out: str | os.PathLike[str],
    embedding: EmbedOptions,
    checkpoint: str | os.PathLike[str] | None = None,
    gallery_dir: str | os.PathLike[str] | None = None,
    add: str | os.PathLike[str] | None = None,
    remove: list[str] | None = None,
    template: str = "image",
    index_type: str = "flat",
    nlist: int = 0,
    nprobe: int = 32,
    force: bool = False,
) -> tuple[Gallery, int, int]:
    """Build a gallery from an image-folder dataset, or change an existing one (`add`, `remove`).

    Returns the gallery, the number of images embedded, and the number of unreadable images skipped.
    """
    if template not in TEMPLATES:
        raise unknown_choice("template", template, TEMPLATES)
    if index_type not in INDEX_TYPES:
        raise unknown_choice("index type", index_type, INDEX_TYPES)
    if gallery_dir is None and add is None and not remove:
        raise FaceCliError("index needs GALLERY_DIR to build, or --add DIR / --remove NAME to change --out")
    if gallery_dir is not None and (add is not None or remove):
        raise FaceCliError("build a gallery from GALLERY_DIR, or change one with --add/--remove, not both at once")
    if gallery_dir is not None:
        check_writable(out, force=force, inputs=(checkpoint,))
    out = Path(out)
    with writer_lock(out.with_name(f".{out.name}.lock"), f"gallery index {out}"):
        if gallery_dir is not None:
            settings = {"template": template, "index_type": index_type, "nlist": nlist, "nprobe": nprobe}
            gallery, model = _new_gallery(checkpoint, embedding, settings)
            source = gallery_dir
        else:
            gallery, model, embedding = _open_search(out, checkpoint, embedding)
            source = add
        if remove:
            try:
                gallery.remove(remove)
            except FaceCliError as exc:
                raise FaceCliError(f"{out}: {exc}") from None
        embedded, skipped = _add_images(gallery, source, model, embedding) if source is not None else (0, 0)
        if not gallery.identities:
            raise FaceCliError(f"{source or out}: the gallery has no usable images")
        gallery.save(out)
        return gallery, embedded, skipped


def _new_gallery(
    checkpoint: str | os.PathLike[str] | None, embedding: EmbedOptions, settings: dict
) -> tuple[Gallery, Path]:
    """An empty gallery for the model, with its search settings."""
    if checkpoint is None:
        raise FaceCliError("building a gallery needs --checkpoint")
    model, digest = _model_file(checkpoint)
    size = model_config(model, embedding.backend).embedding_size
    empty = np.zeros((0, size), np.float32)
    gallery = Gallery(
        empty, [], [], checkpoint=str(model.resolve()), model_hash=digest, flip=bool(embedding.flip), **settings
    )
    return gallery, model


def _add_images(
    gallery: Gallery, folder: str | os.PathLike[str], model: Path, embedding: EmbedOptions
) -> tuple[int, int]:
    """Embed and add the images of `folder` the gallery does not hold yet; (embedded, unreadable skipped)."""
    files, names, skipped = _scan_gallery(folder)
    known = set(gallery.paths)
    resolved = [str(f.resolve()) for f in files]
    new = [i for i, path in enumerate(resolved) if path not in known]
    if gallery.index_type == "ivf":  # before any image is embedded
        gallery.check_ivf_size([*gallery.identities, *(names[i] for i in new)])
    if new:
        vectors = embed_files(model, [files[i] for i in new], embedding).vectors
        gallery.add(vectors, [names[i] for i in new], [resolved[i] for i in new])
    return len(new), skipped


def _open_search(  # noqa: ANN202
    index: str | os.PathLike[str],
    checkpoint,  # noqa: ANN001
    embedding: EmbedOptions,
    any_model: bool | None = None,
):
    gallery = Gallery.open(index)
    if not len(gallery.embeddings):
        raise FaceCliError(f"{index}: the gallery holds no faces; add some with facecli index --add")
    model, _ = _model_file(checkpoint or gallery.checkpoint, gallery.model_hash, any_model)
    size = model_config(model, embedding.backend).embedding_size
    if gallery.embeddings.shape[1] != size:
        raise FaceCliError(f"{index}: its embeddings have {gallery.embeddings.shape[1]} dimensions, {model}'s {size}")
    return gallery, model, _as_built(gallery, embedding)


def identify(
    *,
    index: str | os.PathLike[str],
    query: str | os.PathLike[str],
    out: str | os.PathLike[str],
    embedding: EmbedOptions,
    top_k: int = 5,
    threshold: float | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    force: bool = False,
    min_quality: float | None = None,
    any_model: bool = False,
) -> pd.DataFrame:
    """Top-k identities per query image, `unknown` when the best score is under the threshold; writes a CSV. For
    a model with a quality score, each face's quality too, and a face under `min_quality` is `refused`, its
    reason in the `refused` column. `any_model` searches with a model other than the gallery's (an int8 export
    of it, say), on purpose."""
    check_number("--top-k", top_k, COUNT)
    if threshold is not None:
        check_threshold(threshold, "cosine")  # galleries score by cosine
    check_writable(out, force=force, inputs=(index, checkpoint, query))
    gallery, model, embedding = _open_search(index, checkpoint, embedding, any_model)
    check_min_quality(min_quality, model_config(model, embedding.backend), model)
    files = image_files(query)
    found = embed_files(model, files, embedding)
    scores, names = gallery.search(found.vectors, top_k)
    ranks = min(top_k, len(set(gallery.identities)))  # a gallery of 8 people has no 9th candidate to list
    rows = []
    for n, (file, row_scores, row_names) in enumerate(zip(files, scores, names, strict=True)):
        best = row_names[0] if threshold is None or row_scores[0] >= threshold else UNKNOWN
        row = {"query": str(file), "identity": best, "score": round(float(row_scores[0]), 6)}
        if found.quality is not None:
            refused = low_quality(float(found.quality[n]), min_quality)
            row.update(quality=round(float(found.quality[n]), 4), refused=refused or "")
            row["identity"] = REFUSED if refused else best
        for rank in range(ranks):
            row[f"top{rank + 1}"] = row_names[rank] if rank < len(row_names) else ""
            row[f"score{rank + 1}"] = round(float(row_scores[rank]), 6) if rank < len(row_names) else np.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    write_csv_atomic(out, table)
    return table


@dataclass
class IdentificationReport:
    """Closed-set ranks and open-set detection-and-identification rates."""

    probes_known: int
    probes_unknown: int
    rank1: float
    rank5: float
    cmc: list[float]
    dir_at_far: dict[str, float]


def _check_not_enrolled(probes: str | os.PathLike[str], files: list[Path], gallery: Gallery) -> None:
    """Refuse probes that are the gallery's own images: each finds itself at rank 1, whatever the model."""
    enrolled = same_files({os.path.realpath(f) for f in files}, [p for p in gallery.paths if p])
    shared = [f for f in files if os.path.realpath(f) in enrolled]
    if shared:
        raise FaceCliError(
            f"{probes}: {len(shared)} of {len(files)} probes are images of the gallery itself or copies of them "
            f"(such as {shared[0]}), which every model finds at rank 1; probe with other images of its people"
        )


def evaluate_identification(
    *,
    index: str | os.PathLike[str],
    probes: str | os.PathLike[str],
    embedding: EmbedOptions,
    plot: str | os.PathLike[str] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> IdentificationReport:
    """Rank-1/rank-5 and a CMC curve on probes of gallery identities; DIR at FAR using probes of others."""
    check_plot_file(plot)
    check_writable(plot, force=force, inputs=(index, checkpoint, probes))
    gallery, model, embedding = _open_search(index, checkpoint, embedding)
    files, names, _ = _scan_gallery(probes)
    if not files:
        raise FaceCliError(f"{probes}: no usable probe images")
    _check_not_enrolled(probes, files, gallery)
    enrolled = set(gallery.identities)
    max_rank = min(20, len(enrolled))
    scores, ranked = gallery.search(embed_files(model, files, embedding).vectors, max_rank)
    known = np.array([n in enrolled for n in names])
    if not known.any():
        raise FaceCliError(f"{probes}: no probe identity is in the gallery, so ranks cannot be measured")
    hit_rank = np.array([r.index(n) + 1 if n in r else max_rank + 1 for n, r in zip(names, ranked, strict=True)])
    cmc = [float((hit_rank[known] <= k).mean()) for k in range(1, max_rank + 1)]
    dir_at_far = {}
    impostor_best = scores[~known, 0]
    for far in (0.1, 0.01):
        if len(impostor_best) >= round(1 / far):
            threshold = np.quantile(impostor_best, 1 - far, method="higher")
            dir_at_far[f"{far:g}"] = float(((hit_rank == 1) & (scores[:, 0] > threshold))[known].mean())
    if plot:
        from facecli.plots import cmc_plot

        cmc_plot(cmc, plot)
    return IdentificationReport(
        int(known.sum()), int((~known).sum()), cmc[0], cmc[min(4, max_rank - 1)], cmc, dir_at_far
    )
