"""Evaluation commands: verification metrics, a threshold sweep, predictions for a submission."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facecli.cli.app import EVALUATION, command
from facecli.cli.defaults import Defaults, given, library_constant
from facecli.cli.options import EmbeddingOptions, Force, ModelFile, PairsOptions, model_or_newest
from facecli.cli.tables import sweep_table, verification_table
from facecli.console import console
from facecli.errors import FaceCliError

PairsFile = Annotated[
    Path, typer.Option("--pairs", help="Pairs file: LFW pairs.txt, 'path1 path2 label' lines or CSV.")
]

FOLDS = library_constant("verification/evaluation", "DEFAULT_FOLDS")
SWEEP = Defaults("verification/api", "sweep")


@command("eval", EVALUATION)
def eval_command(
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", "-c", help="Model file (.safetensors, or .onnx with --backend onnx).")
    ] = None,
    pairs: Annotated[Path | None, typer.Option("--pairs", help="Labelled pairs file (any supported format).")] = None,
    from_scores: Annotated[
        Path | None, typer.Option("--from-scores", help="Evaluate this CSV (distance,label or score,label[,fold]).")
    ] = None,
    bin_set: Annotated[
        Path | None, typer.Option("--bin", help="An insightface validation set (lfw.bin, cfp_fp.bin, agedb_30.bin).")
    ] = None,
    templates: Annotated[
        Path | None, typer.Option("--templates", help="IJB-style image -> template -> media file (*_face_tid_mid.txt).")
    ] = None,
    template_pairs: Annotated[
        Path | None, typer.Option("--template-pairs", help="Labelled template pairs (*_template_pair_label.txt).")
    ] = None,
    folds: Annotated[
        int | None,
        typer.Option("--folds", min=2, help=f"Folds for pairs without folds of their own (default: {FOLDS})."),
    ] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write the metrics as JSON.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write ROC + score histograms (png/pdf/svg).")] = None,
    scores: Annotated[
        Path | None, typer.Option("--scores", help="Write the score of every pair as CSV (not with --from-scores).")
    ] = None,
    pairs_options: PairsOptions = PairsOptions(),  # noqa: B008  (groups: expanded into options by `command`)
    embedding: EmbeddingOptions = EmbeddingOptions(),  # noqa: B008
    force: Force = False,
) -> None:
    """LFW-protocol verification: k-fold accuracy, AUC, EER, TAR@FAR and the best threshold."""
    from facecli.verification import TemplatePairs, evaluate

    if from_scores is None:
        checkpoint = model_or_newest(checkpoint)
    embedded = from_scores is None
    if bin_set is not None:
        embedding.refuse(("workers", "cache", "align"), "--bin images are decoded from the file, in memory")
    if (templates is None) != (template_pairs is None):
        raise FaceCliError("--templates and --template-pairs go together")
    if templates is not None:
        pairs_options.refuse_template_pairs()
    result = evaluate(
        checkpoint=checkpoint,
        pairs=pairs_options.read(pairs) if embedded and pairs else None,
        embedding=embedding.embed_options() if embedded else None,
        from_scores=from_scores,
        bin_set=bin_set,
        templates=TemplatePairs(templates, template_pairs, pairs_options.root) if templates else None,
        **given(folds=folds),
        report=report,
        plot=plot,
        scores=scores,
        force=force,
    )
    console.print(verification_table(result))


@command("sweep", EVALUATION)
def sweep_command(
    pairs: PairsFile,
    start: Annotated[float | None, typer.Option("--start", help="First threshold (default: lowest score).")] = None,
    stop: Annotated[float | None, typer.Option("--stop", help="Last threshold (default: highest score).")] = None,
    step: Annotated[float | None, typer.Option("--step", help="Threshold step (default: 200 steps).")] = None,
    select: Annotated[
        str | None,
        typer.Option(
            "--select",
            help=SWEEP("accuracy, f1 or far=<rate> (e.g. far=1e-3)", "select"),
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="CSV of the rates per threshold.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Plot accuracy/FAR/FRR against threshold.")] = None,
    save_threshold: Annotated[
        bool, typer.Option("--save-threshold", help="Store the chosen threshold in the checkpoint.")
    ] = False,
    pairs_options: PairsOptions = PairsOptions(),  # noqa: B008
    embedding: EmbeddingOptions = EmbeddingOptions(),  # noqa: B008
    checkpoint: ModelFile = None,
    force: Force = False,
) -> None:
    """Rates per threshold (accuracy, precision, recall, F1, FAR, FRR, TAR) and the chosen threshold."""
    from facecli.verification import sweep

    checkpoint = model_or_newest(checkpoint)
    result = sweep(
        checkpoint=checkpoint,
        pairs=pairs_options.read(pairs),
        embedding=embedding.embed_options(),
        start=start,
        stop=stop,
        step=step,
        **given(select=select),
        out=out,
        plot=plot,
        save_threshold=save_threshold,
        force=force,
    )
    console.print(sweep_table(result, saved_to=checkpoint if save_threshold else None))


@command("predict", EVALUATION)
def predict_command(
    out: Annotated[Path, typer.Option("--out", help="CSV to write: input rows + score + prediction.")],
    pairs: Annotated[
        Path | None,
        typer.Option(
            "--pairs",
            help="Pairs file (default: the one lfw_pair.txt, pairs.txt, LfwPairs.csv or lfw_test_pair.txt here).",
        ),
    ] = None,
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Decision threshold (default: the checkpoint's).")
    ] = None,
    skip_missing: Annotated[
        bool, typer.Option("--skip-missing", help="Empty score for pairs with a missing image.")
    ] = False,
    pairs_options: PairsOptions = PairsOptions(),  # noqa: B008
    embedding: EmbeddingOptions = EmbeddingOptions(),  # noqa: B008
    checkpoint: ModelFile = None,
    force: Force = False,
) -> None:
    """Score every pair and predict same (1) / different (0), keeping the input rows in order."""
    from facecli.verification import predict
    from facecli.workdir import pairs_file

    checkpoint = model_or_newest(checkpoint)
    pairs = pairs if pairs is not None else pairs_file()
    table = predict(
        checkpoint=checkpoint,
        pairs=pairs_options.read(pairs),
        embedding=embedding.embed_options(),
        out=out,
        threshold=threshold,
        skip_missing=skip_missing,
        force=force,
    )
    unscored = int(table["score"].isna().sum())
    note = f" ({unscored} unscored: an image missing)" if unscored else ""
    console.print(f"wrote {len(table)} rows to {out}{note}")
