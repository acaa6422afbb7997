"""`facecli eval`: one function per input (pairs, a .bin set, IJB templates, a scores file) behind a
dispatcher that checks the combination given; each scores, then reports the LFW protocol's metrics."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from facecli.embed import EmbedOptions
from facecli.errors import FaceCliError
from facecli.fileio import check_plot_file, check_writable, write_csv_atomic, write_text_atomic
from facecli.verification.metrics import VerificationReport, column_of_metric, to_display, verification_report
from facecli.verification.reject_curve import error_versus_reject
from facecli.verification.scores_file import ScoresFile, read_scores
from facecli.verification.scoring import PairsInput, ScoredPairs, check_pairs, labelled, score_pairs


def _as_scores_file(scored: ScoredPairs) -> ScoresFile:
    return ScoresFile(scored.scores, labelled(scored), scored.pairs.folds, scored.metric, scored.quality)


DEFAULT_FOLDS = 10  # LFW's


def check_folds(folds: int | None, own: np.ndarray | None, pairs: int) -> None:
    """Refuse `--folds` for pairs that come with folds of their own (unless it says as many), and more folds
    than pairs."""
    if own is None and pairs < (folds or DEFAULT_FOLDS):
        raise FaceCliError(f"{pairs} pairs are too few for {folds or DEFAULT_FOLDS} folds (set --folds)")
    if folds is not None and own is not None and folds != (count := len(np.unique(own))):
        raise FaceCliError(f"--folds {folds}: the pairs come in {count} folds of their own (the file's); drop --folds")


def report_scores(
    data: ScoresFile,
    *,
    folds: int | None = None,
    report: str | os.PathLike[str] | None = None,
    plot: str | os.PathLike[str] | None = None,
    counted: tuple[int, int] | None = None,
) -> VerificationReport:
    """The LFW protocol (+ AUC, EER, TAR@FAR) on labelled scores; writes the report and plot when asked.

    `folds` splits pairs that come without folds of their own (None: DEFAULT_FOLDS). `counted` (unique images,
    forward passes) goes into the report where the scores were embedded here.
    """
    if data.labels.min() == data.labels.max():
        raise FaceCliError("evaluation needs both genuine and impostor pairs")
    check_folds(folds, data.folds, len(data.scores))
    folds = folds or DEFAULT_FOLDS
    result = verification_report(data.scores, data.labels, data.metric, data.folds, folds)
    if counted is not None:
        result.images, result.forward_passes = counted
    if data.quality is not None:
        result.reject_curve = error_versus_reject(data.scores, data.labels, data.quality)
    if report:
        write_text_atomic(report, json.dumps(dataclasses.asdict(result), indent=2) + "\n")
    if plot:
        from facecli.plots import roc_and_histograms

        curve = result.reject_curve
        reject = None if curve is None else (curve.rejected, curve.error, curve.fnmr)
        roc_and_histograms(data.scores, data.labels, result.best_threshold, data.metric, plot, reject)
    return result


@dataclass(frozen=True)
class TemplatePairs:
    """IJB-style input: images grouped into templates and media, and labelled pairs of templates."""

    templates: Path
    pairs: Path
    root: Path | None = None  # the images' folder (default: the templates file's)


def _score_templates(
    checkpoint: Path, given: TemplatePairs, embedding: EmbedOptions
) -> tuple[ScoresFile, pd.DataFrame, tuple[int, int]]:
    """Templates pooled as the IJB scripts pool them and their pairs scored: the scores, the table `--scores`
    writes, and (unique images, forward passes)."""
    from facecli.embed import embed_files
    from facecli.verification.templates import pool, read_template_pairs, read_templates
    from facecli.verification.templates import score_pairs as score_template_pairs

    templates = read_templates(given.templates, given.root)
    first, second, labels = read_template_pairs(given.pairs, templates)  # checked before any embedding
    found = embed_files(checkpoint, templates.images, embedding)
    ids, pooled = pool(np.asarray(found.vectors, np.float64), templates)
    scores = score_template_pairs(ids, pooled, first, second)
    table = pd.DataFrame({"template1": first, "template2": second, "label": labels, "score": scores})
    return ScoresFile(scores, labels, None, "cosine"), table, (len(set(templates.images)), found.embedded)


def evaluate(
    *,
    checkpoint: Path | None = None,
    pairs: PairsInput | None = None,
    embedding: EmbedOptions | None = None,
    from_scores: Path | None = None,
    bin_set: Path | None = None,
    templates: TemplatePairs | None = None,
    folds: int | None = None,
    report: Path | None = None,
    plot: Path | None = None,
    scores: Path | None = None,
    force: bool = False,
) -> VerificationReport:
    """`facecli eval`: verification metrics for a model on a pairs file, an insightface .bin set or IJB-style
    template pairs, or for a scores CSV."""
    if folds is not None and folds < 2:
        raise FaceCliError(f"--folds must be at least 2, got {folds}")
    outputs = Outputs(folds, report, plot, scores, force)
    if templates is not None:
        if pairs is not None or from_scores is not None or bin_set is not None:
            raise FaceCliError("--templates and --template-pairs are the input; drop --pairs, --from-scores and --bin")
        return _evaluate_templates(_model(checkpoint, embedding, "--templates"), templates, outputs)
    if bin_set is not None:
        if pairs is not None or from_scores is not None or scores is not None:
            raise FaceCliError("--bin holds its own pairs; drop --pairs, --from-scores and --scores")
        return _evaluate_bin(_model(checkpoint, embedding, "--bin"), bin_set, outputs)
    if from_scores is not None:
        if scores is not None:
            raise FaceCliError("--scores writes the scores of embedded pairs; with --from-scores they are the input")
        if checkpoint is not None or pairs is not None:
            raise FaceCliError("--from-scores evaluates a scores file; drop --checkpoint and --pairs")
        return _evaluate_scores_file(from_scores, outputs)
    if checkpoint is None or pairs is None or embedding is None:
        raise FaceCliError("eval needs --checkpoint and --pairs, or --from-scores FILE")
    return _evaluate_pairs((checkpoint, embedding), pairs, outputs)


@dataclass(frozen=True)
class Outputs:
    """What `evaluate` writes besides its result, and how many folds it uses where the input has none."""

    folds: int | None
    report: Path | None
    plot: Path | None
    scores: Path | None
    force: bool

    def check(self, *inputs: Path | None) -> None:
        check_plot_file(self.plot)
        check_writable(self.report, self.plot, self.scores, force=self.force, inputs=inputs)

    def report_on(self, data: ScoresFile, counted: tuple[int, int] | None = None) -> VerificationReport:
        return report_scores(data, folds=self.folds, report=self.report, plot=self.plot, counted=counted)


Model = tuple[Path, EmbedOptions]


def _model(checkpoint: Path | None, embedding: EmbedOptions | None, option: str) -> Model:
    if checkpoint is None or embedding is None:
        raise FaceCliError(f"eval {option} needs --checkpoint")
    return checkpoint, embedding


def _evaluate_templates(model: Model, templates: TemplatePairs, outputs: Outputs) -> VerificationReport:
    checkpoint, embedding = model
    outputs.check(checkpoint, templates.templates, templates.pairs)
    data, table, counted = _score_templates(checkpoint, templates, embedding)
    result = outputs.report_on(data, counted)
    if outputs.scores:
        write_csv_atomic(outputs.scores, table)  # readable by --from-scores (score,label columns)
    return result


def _evaluate_bin(model: Model, bin_set: Path, outputs: Outputs) -> VerificationReport:
    from facecli.verification.bin_eval import score_bin

    checkpoint, embedding = model
    outputs.check(checkpoint, bin_set)
    data, embedded = score_bin(checkpoint, bin_set, embedding)
    return outputs.report_on(data, (embedded, embedded))


def _evaluate_scores_file(from_scores: Path, outputs: Outputs) -> VerificationReport:
    outputs.check(from_scores)
    return outputs.report_on(read_scores(from_scores))


def _evaluate_pairs(model: Model, pairs: PairsInput, outputs: Outputs) -> VerificationReport:
    checkpoint, embedding = model
    outputs.check(checkpoint, pairs.pairs)
    checked = check_pairs(pairs)
    check_folds(outputs.folds, checked.pairs.folds, len(checked.pairs))
    scored = score_pairs(checkpoint, checked, pairs.metric, embedding)
    result = outputs.report_on(_as_scores_file(scored), (scored.unique_images, scored.images_embedded))
    if outputs.scores:
        table = scored.pairs.table.copy()
        table[column_of_metric(scored.metric)] = to_display(scored.scores, scored.metric)  # readable by --from-scores
        if scored.pairs.folds is not None:
            table["fold"] = scored.pairs.folds
        if scored.quality is not None:
            table["quality"] = scored.quality
        write_csv_atomic(outputs.scores, table)
    return result
