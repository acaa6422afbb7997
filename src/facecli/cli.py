"""The `facecli` command line: each command parses options, calls one library function, prints."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from facecli.console import (
    alignment_table,
    annotation_tables,
    backbones_table,
    console,
    err_console,
    error_line,
    identification_table,
    import_sources_table,
    registry_table,
    sweep_table,
    training_table,
    verification_table,
)
from facecli.errors import FaceCliError

app = typer.Typer(
    name="facecli",
    help="Face verification and metric learning with PyTorch.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def command(name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a command whose user errors become one red line on stderr and exit code 2."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except FaceCliError as exc:
                err_console.print(error_line(exc), highlight=False, soft_wrap=True)
                raise typer.Exit(2) from None
            except KeyboardInterrupt:
                err_console.print("[bold red]interrupted[/]")
                raise typer.Exit(130) from None

        return app.command(name)(run)

    return decorate


Force = Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")]
Workers = Annotated[int, typer.Option("--workers", min=1, help="Parallel reader threads.")]


@command("models")
def models_command(
    timm: Annotated[
        list[str] | None, typer.Option("--timm", help="Also list this timm architecture (repeatable).")
    ] = None,
) -> None:
    """List the registry: backbones (input size, parameters, GFLOPs, embedding size), heads and losses."""
    import facecli.losses  # noqa: F401  (registers heads and losses)
    from facecli.models.info import list_backbones
    from facecli.registry import HEADS, LOSSES

    console.print(backbones_table(list_backbones([f"timm/{name}" for name in timm or []])))
    console.print(registry_table("heads", {name: HEADS.get(name) for name in HEADS.names()}))
    console.print(registry_table("losses", {name: LOSSES.get(name) for name in LOSSES.names()}))


@command("synth")
def synth_command(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write person_NNNN/person_NNNN_NNNN.jpg into.")],
    identities: Annotated[int, typer.Option(help="Number of identities.")] = 20,
    images: Annotated[int, typer.Option(help="Images per identity.")] = 10,
    size: Annotated[int, typer.Option(help="Image side in pixels.")] = 64,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same images).")] = 0,
    workers: Workers = 4,
    force: Force = False,
) -> None:
    """Generate a synthetic face-like dataset with identity structure."""
    from facecli.data.synth import synth

    count = synth(out_dir, identities=identities, images=images, size=size, seed=seed, workers=workers, force=force)
    console.print(f"wrote {count} images of {identities} identities to {out_dir}")


@command("annotate")
def annotate_command(
    dataset_dir: Annotated[Path, typer.Argument(help="Image-folder dataset: one folder per identity.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for cls_train.txt and classes.txt.")] = Path("."),
    csv: Annotated[Path | None, typer.Option(help="Also write a CSV with columns path,label,identity.")] = None,
    pairs: Annotated[int, typer.Option(help="Draw this many verification pairs (half genuine).")] = 0,
    pairs_out: Annotated[Path | None, typer.Option(help="Pairs file to write (LFW pairs.txt layout).")] = None,
    holdout: Annotated[int, typer.Option(help="Keep this many identities out of training, for the pairs.")] = 0,
    folds: Annotated[int, typer.Option(min=2, help="Folds in the pairs file.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed for the hold-out and pair draws.")] = 0,
    check: Annotated[
        bool, typer.Option("--check", help="Decode every image fully (slower, finds truncation).")
    ] = False,
    relative: Annotated[bool, typer.Option("--relative", help="Write paths relative to DATASET_DIR.")] = False,
    workers: Workers = 4,
    force: Force = False,
) -> None:
    """Write cls_train.txt (id;path), classes.txt, optional CSV and pairs, and print a data report."""
    from facecli.data.annotation import annotate

    report = annotate(
        dataset_dir,
        out_dir=out,
        csv=csv,
        pairs=pairs,
        pairs_out=pairs_out,
        holdout=holdout,
        folds=folds,
        seed=seed,
        check=check,
        relative=relative,
        workers=workers,
        force=force,
    )
    for table in annotation_tables(report):
        console.print(table)
    console.print("wrote " + ", ".join(str(p) for p in report.outputs))


@command("import")
def import_command(
    weights: Annotated[
        Path | None, typer.Argument(help="Published weights (.pth/.pt state dict or .safetensors).")
    ] = None,
    arch: Annotated[str | None, typer.Option("--arch", help="Layout of the weights; see --list.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="facecli .safetensors file to write.")] = None,
    list_sources: Annotated[bool, typer.Option("--list", help="Show the supported sources.")] = False,
    force: Force = False,
) -> None:
    """Convert published FaceNet / Inception-ResNet-v1 / ArcFace / VGG16 weights to a facecli model file."""
    from facecli.importer import SOURCES, import_weights

    if list_sources:
        console.print(import_sources_table(SOURCES))
        return
    if weights is None or arch is None or out is None:
        raise FaceCliError("import needs WEIGHTS, --arch SOURCE and --out FILE (see facecli import --list)")
    model = import_weights(weights, arch, out, force=force)
    c = model.config
    console.print(f"wrote {out}: {c.backbone}, {c.embedding_size}-d, input {c.input_size[0]}x{c.input_size[1]}")


Checkpoint = Annotated[
    Path, typer.Option("--checkpoint", "-c", help="Model file (.safetensors, or .onnx with --backend onnx).")
]
PairsPath = Annotated[
    Path, typer.Option("--pairs", help="Pairs file: LFW pairs.txt, 'path1 path2 label' lines or CSV.")
]
Root = Annotated[Path, typer.Option("--root", help="Folder the pair paths are relative to.")]
MetricOpt = Annotated[str, typer.Option("--metric", help="cosine (similarity) or euclidean (distance).")]
FormatOpt = Annotated[str, typer.Option("--format", help="auto, lfw, paths or csv.")]
Columns = Annotated[str | None, typer.Option("--columns", help="CSV columns: image1,image2[,label].")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda[:N] or mps.")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="auto, fp32, fp16 or bf16.")]
ChannelsLast = Annotated[bool, typer.Option("--channels-last", help="Use the channels_last memory format.")]
CompileOpt = Annotated[bool, typer.Option("--compile", help="torch.compile the model.")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Images per forward pass.")]
LoaderWorkers = Annotated[
    int | None, typer.Option("--workers", min=0, help="Image loader processes (default: cores-1).")
]
Flip = Annotated[bool, typer.Option("--flip", help="Add the mirrored image's embedding (flip test-time augmentation).")]
Cache = Annotated[Path | None, typer.Option("--cache", help="Embedding cache folder (keyed by model and image).")]
BackendOpt = Annotated[str, typer.Option("--backend", help="torch (.safetensors) or onnx (an exported .onnx file).")]
OutsideRoot = Annotated[bool, typer.Option("--allow-outside-root", help="Allow pair paths that leave --root.")]


def _embed_options(
    backend: str,
    device: str,
    precision: str,
    channels_last: bool,
    compile: bool,
    batch_size: int,
    workers: int | None,
    flip: bool,
    cache: Path | None,
):  # noqa: ANN202
    from facecli.engine.verify import EmbedOptions
    from facecli.runtime import resolve_runtime

    runtime = resolve_runtime(device, precision, channels_last, compile)
    err_console.print(runtime.describe() if backend == "torch" else "runtime: onnxruntime", highlight=False)
    return EmbedOptions(runtime, backend, batch_size, workers, flip, cache)  # type: ignore[arg-type]


def _pairs_input(pairs: Path, root: Path, metric: str, fmt: str, columns: str | None, outside: bool):  # noqa: ANN202
    from facecli.engine.verify import PairsInput

    return PairsInput(pairs, root, metric, fmt, columns.split(",") if columns else None, outside)  # type: ignore[arg-type]


@command("eval")
def eval_command(
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", "-c", help="facecli .safetensors model file.")
    ] = None,
    pairs: Annotated[Path | None, typer.Option("--pairs", help="Labelled pairs file (any supported format).")] = None,
    root: Root = Path("."),
    from_scores: Annotated[
        Path | None, typer.Option("--from-scores", help="CSV distance,label or score,label[,fold].")
    ] = None,
    metric: MetricOpt = "cosine",
    fmt: FormatOpt = "auto",
    columns: Columns = None,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Folds for files without folds.")] = 10,
    report: Annotated[Path | None, typer.Option("--report", help="Write the metrics as JSON.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write ROC + score histograms (png/pdf/svg).")] = None,
    scores: Annotated[Path | None, typer.Option("--scores", help="Write the score of every pair as CSV.")] = None,
    flip: Flip = False,
    cache: Cache = None,
    backend: BackendOpt = "torch",
    batch_size: BatchSize = 64,
    workers: LoaderWorkers = None,
    device: Device = "auto",
    precision: PrecisionOpt = "auto",
    channels_last: ChannelsLast = False,
    compile: CompileOpt = False,
    allow_outside_root: OutsideRoot = False,
    force: Force = False,
) -> None:
    """LFW-protocol verification: k-fold accuracy, AUC, EER, TAR@FAR and the best threshold."""
    from facecli.engine.verify import evaluate

    opts = source = None
    if from_scores is None:
        if checkpoint is None or pairs is None:
            raise FaceCliError("eval needs --checkpoint and --pairs, or --from-scores FILE")
        opts = _embed_options(backend, device, precision, channels_last, compile, batch_size, workers, flip, cache)
        source = _pairs_input(pairs, root, metric, fmt, columns, allow_outside_root)
    result = evaluate(checkpoint, source, opts, from_scores, folds, report, plot, scores, force)
    console.print(verification_table(result))


@command("predict")
def predict_command(
    checkpoint: Checkpoint,
    pairs: PairsPath,
    out: Annotated[Path, typer.Option("--out", help="CSV to write: input rows + score + prediction.")],
    root: Root = Path("."),
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Decision threshold (default: the checkpoint's).")
    ] = None,
    skip_missing: Annotated[
        bool, typer.Option("--skip-missing", help="Empty score for pairs with a missing image.")
    ] = False,
    metric: MetricOpt = "cosine",
    fmt: FormatOpt = "auto",
    columns: Columns = None,
    flip: Flip = False,
    cache: Cache = None,
    backend: BackendOpt = "torch",
    batch_size: BatchSize = 64,
    workers: LoaderWorkers = None,
    device: Device = "auto",
    precision: PrecisionOpt = "auto",
    channels_last: ChannelsLast = False,
    compile: CompileOpt = False,
    allow_outside_root: OutsideRoot = False,
    force: Force = False,
) -> None:
    """Score every pair and predict same (1) / different (0), keeping the input rows in order."""
    from facecli.engine.verify import predict

    opts = _embed_options(backend, device, precision, channels_last, compile, batch_size, workers, flip, cache)
    table = predict(
        checkpoint,
        _pairs_input(pairs, root, metric, fmt, columns, allow_outside_root),
        opts,
        out,
        threshold,
        skip_missing,
        force,
    )
    console.print(f"wrote {len(table)} rows to {out}")


@command("sweep")
def sweep_command(
    checkpoint: Checkpoint,
    pairs: PairsPath,
    root: Root = Path("."),
    start: Annotated[float | None, typer.Option("--start", help="First threshold (default: lowest score).")] = None,
    stop: Annotated[float | None, typer.Option("--stop", help="Last threshold (default: highest score).")] = None,
    step: Annotated[float | None, typer.Option("--step", help="Threshold step (default: 200 steps).")] = None,
    select: Annotated[str, typer.Option("--select", help="accuracy, f1 or far=<rate> (e.g. far=1e-3).")] = "accuracy",
    out: Annotated[Path | None, typer.Option("--out", help="CSV of the rates per threshold.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Plot accuracy/FAR/FRR against threshold.")] = None,
    save_threshold: Annotated[
        bool, typer.Option("--save-threshold", help="Store the chosen threshold in the checkpoint.")
    ] = False,
    metric: MetricOpt = "cosine",
    fmt: FormatOpt = "auto",
    columns: Columns = None,
    flip: Flip = False,
    cache: Cache = None,
    backend: BackendOpt = "torch",
    batch_size: BatchSize = 64,
    workers: LoaderWorkers = None,
    device: Device = "auto",
    precision: PrecisionOpt = "auto",
    channels_last: ChannelsLast = False,
    compile: CompileOpt = False,
    allow_outside_root: OutsideRoot = False,
    force: Force = False,
) -> None:
    """Rates per threshold (accuracy, precision, recall, F1, FAR, FRR, TAR) and the chosen threshold."""
    from facecli.engine.verify import sweep

    opts = _embed_options(backend, device, precision, channels_last, compile, batch_size, workers, flip, cache)
    result = sweep(
        checkpoint,
        _pairs_input(pairs, root, metric, fmt, columns, allow_outside_root),
        opts,
        start,
        stop,
        step,
        select,
        out,
        plot,
        save_threshold,
        force,
    )
    console.print(sweep_table(result, saved_to=checkpoint if save_threshold else None))


def _numbers(text: str | None, kind: type) -> list | None:
    if text is None:
        return None
    try:
        return [kind(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise FaceCliError(f"expected comma-separated numbers, got '{text}'") from None


@command("train")
def train_command(
    data: Annotated[
        Path | None, typer.Option("--data", help="Dataset folder (one folder per identity) or cls_train.txt.")
    ] = None,
    root: Annotated[Path | None, typer.Option("--root", help="Folder relative cls_train.txt paths start from.")] = None,
    run_dir: Annotated[
        Path | None, typer.Option("--run-dir", help="Folder for checkpoints, metrics and config.")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML file with any of these options.")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue the run in this folder exactly.")] = None,
    loss: Annotated[
        str | None, typer.Option("--loss", help="triplet, arcface, cosface, combined, softmax, siamese, contrastive.")
    ] = None,
    backbone: Annotated[str | None, typer.Option("--backbone", help="A registered backbone or timm/<name>.")] = None,
    val_pairs: Annotated[
        Path | None, typer.Option("--val-pairs", help="Pairs file validated each epoch (LFW 10-fold).")
    ] = None,
    val_root: Annotated[
        Path | None, typer.Option("--val-root", help="Folder the validation pairs are relative to.")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help="Epochs (one epoch ~ every image once).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=2, help="Images per step per process.")] = None,
    img_size: Annotated[
        int | None, typer.Option("--img-size", help="Input side in pixels (default: the backbone's).")
    ] = None,
    embedding_size: Annotated[int | None, typer.Option("--embedding-size", help="Embedding dimension.")] = None,
    dropout: Annotated[float | None, typer.Option("--dropout", help="Dropout before the embedding layer.")] = None,
    optimizer: Annotated[str | None, typer.Option("--optimizer", help="sgd, adam or adamw.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Learning rate.")] = None,
    weight_decay: Annotated[
        float | None, typer.Option("--weight-decay", help="Weight decay (not on biases/norms).")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="cos or step (x --lr-gamma at --lr-steps).")
    ] = None,
    warmup_epochs: Annotated[float | None, typer.Option("--warmup-epochs", help="Linear lr warmup length.")] = None,
    lr_steps: Annotated[
        str | None, typer.Option("--lr-steps", help="Epochs where the step scheduler decays, e.g. 8,12.")
    ] = None,
    lr_scale_batch: Annotated[
        bool | None, typer.Option("--lr-scale-batch/--no-lr-scale-batch", help="Scale --lr by global batch / 64.")
    ] = None,
    aug: Annotated[str | None, typer.Option("--aug", help="none, light or strong.")] = None,
    sampler: Annotated[
        str | None, typer.Option("--sampler", help="auto, pk (P identities x K images) or random.")
    ] = None,
    k: Annotated[int | None, typer.Option("--k", min=1, help="Images per identity in a P x K batch.")] = None,
    margin: Annotated[
        float | None, typer.Option("--margin", help="Loss margin (triplet 0.2, arcface 0.5, cosface 0.35).")
    ] = None,
    scale: Annotated[float | None, typer.Option("--scale", help="Logit scale s of the margin heads (64).")] = None,
    margins: Annotated[str | None, typer.Option("--margins", help="m1,m2,m3 of the combined margin.")] = None,
    mining: Annotated[str | None, typer.Option("--mining", help="Triplet miner: batch_hard, semi_hard or all.")] = None,
    aux_ce_weight: Annotated[
        float | None, typer.Option("--aux-ce-weight", help="Weight of triplet's auxiliary softmax.")
    ] = None,
    easy_margin: Annotated[
        bool | None, typer.Option("--easy-margin/--no-easy-margin", help="ArcFace's easy margin.")
    ] = None,
    clip_grad: Annotated[float | None, typer.Option("--clip-grad", help="Clip the gradient norm to this.")] = None,
    patience: Annotated[
        int | None, typer.Option("--patience", help="Stop after this many epochs without improvement.")
    ] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option("--checkpoint-every", help="Also save resumable state every N steps.")
    ] = None,
    tensorboard: Annotated[
        bool | None, typer.Option("--tensorboard/--no-tensorboard", help="Write TensorBoard events.")
    ] = None,
    workers: LoaderWorkers = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for weights, sampling and augmentation.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda[:N] or mps.")] = None,
    precision: Annotated[str | None, typer.Option("--precision", help="auto, fp32, fp16 or bf16.")] = None,
    channels_last: Annotated[
        bool | None, typer.Option("--channels-last/--no-channels-last", help="channels_last memory format.")
    ] = None,
    compile: Annotated[bool | None, typer.Option("--compile/--no-compile", help="torch.compile the model.")] = None,
    nproc: Annotated[int | None, typer.Option("--nproc", min=1, help="Launch N processes with torchrun (DDP).")] = None,
    force: Force = False,
) -> None:
    """Train an embedding model: triplet, ArcFace/CosFace, softmax or siamese/contrastive, resumable."""
    given = {k: v for k, v in locals().items() if k not in ("config", "resume", "nproc", "force")}
    import sys

    from facecli.engine import distributed
    from facecli.engine.train import train
    from facecli.engine.train_options import resolve_options

    if nproc is not None and nproc > 1:
        raise typer.Exit(distributed.launch(nproc, distributed.without_nproc(sys.argv[1:])))
    given["lr_steps"], given["margins"] = _numbers(lr_steps, int), _numbers(margins, float)
    if resume is not None:
        given["run_dir"] = resume
    options = resolve_options(given, config, resume)
    result = train(options, resume=resume is not None, force=force)
    console.print(training_table(result))
    if result.stopped == "interrupted":
        err_console.print(f"interrupted; continue with: facecli train --resume {result.run_dir}", highlight=False)
        raise typer.Exit(130)


@command("align")
def align_command(
    in_dir: Annotated[Path, typer.Argument(help="Folder of photos (any layout; sub-folders are kept).")],
    out_dir: Annotated[Path, typer.Argument(help="Folder for the aligned crops, same relative paths.")],
    size: Annotated[int, typer.Option("--size", help="Crop side in pixels (112 for ArcFace, 160 for FaceNet).")] = 160,
    margin: Annotated[
        float, typer.Option("--margin", help="facenet template: extra border, fraction of the box.")
    ] = 0.2,
    template: Annotated[
        str, typer.Option("--template", help="facenet (eye-levelled box) or arcface (5 points).")
    ] = "facenet",
    detector: Annotated[str, typer.Option("--detector", help="mtcnn, haar (OpenCV cascades) or onnx.")] = "mtcnn",
    detector_model: Annotated[
        Path | None, typer.Option("--detector-model", help="Your ONNX detector (see README: Plugging in a detector).")
    ] = None,
    min_face: Annotated[int, typer.Option("--min-face", min=12, help="Smallest face side to find, in pixels.")] = 20,
    all_faces: Annotated[
        bool, typer.Option("--all", help="Write every face (NAME_face1, ...), not only the largest.")
    ] = False,
    keep_unaligned: Annotated[
        bool, typer.Option("--keep-unaligned", help="Write a centre crop for photos with no face.")
    ] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Photos processed in parallel.")] = 2,
    force: Annotated[bool, typer.Option("--force", help="Redo photos whose output exists.")] = False,
) -> None:
    """Detect faces and five landmarks, warp to a template, write crops and align_report.csv."""
    from facecli.align.folder import AlignOptions, align_folder

    options = AlignOptions(
        size, margin, template, detector, detector_model, min_face, all_faces, keep_unaligned, workers, force
    )
    report = align_folder(in_dir, out_dir, options)
    console.print(alignment_table(report))


@command("export")
def export_command(
    checkpoint: Checkpoint,
    out: Annotated[Path, typer.Option("--out", help="File to write (model.onnx or model.pt).")],
    fmt: Annotated[str, typer.Option("--format", help="onnx or torchscript.")] = "onnx",
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset version.")] = 17,
    static_batch: Annotated[int | None, typer.Option("--static-batch", min=1, help="Fix the ONNX batch size.")] = None,
    fp16: Annotated[bool, typer.Option("--fp16", help="Half-precision ONNX graph (float32 input and output).")] = False,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Check the export against PyTorch.")] = True,
    verify_images: Annotated[
        list[Path] | None, typer.Option("--verify-image", help="Face image to check with (repeatable).")
    ] = None,
    force: Force = False,
) -> None:
    """Export to ONNX or TorchScript with preprocessing metadata inside, verified against PyTorch."""
    from facecli.engine.export import export

    result = export(checkpoint, fmt, out, opset, static_batch, fp16, verify, verify_images, force)  # type: ignore[arg-type]
    line = f"wrote {result.path} ({result.format})"
    if result.max_abs_diff is not None:
        line += (
            f"; verified on {result.inputs_checked} inputs: max abs diff {result.max_abs_diff:.2e}, "
            f"min cosine {result.min_cosine:.6f}"
        )
    console.print(line)


def _runtime(device: str, precision: str):  # noqa: ANN202
    from facecli.runtime import resolve_runtime

    runtime = resolve_runtime(device, precision)
    err_console.print(runtime.describe(), highlight=False)
    return runtime


@command("index")
def index_command(
    out: Annotated[Path, typer.Option("--out", help="Gallery index file to write or change.")],
    gallery_dir: Annotated[Path | None, typer.Argument(help="Image-folder gallery: one folder per identity.")] = None,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", "-c", help="facecli model (needed to build).")
    ] = None,
    add: Annotated[Path | None, typer.Option("--add", help="Append the images of this image-folder dataset.")] = None,
    remove: Annotated[list[str] | None, typer.Option("--remove", help="Remove this identity (repeatable).")] = None,
    template: Annotated[
        str, typer.Option("--template", help="image (every image) or mean (one per identity).")
    ] = "image",
    index_type: Annotated[str, typer.Option("--index-type", help="flat (exact) or ivf (approximate).")] = "flat",
    nlist: Annotated[int, typer.Option("--nlist", min=0, help="IVF lists (default 4 sqrt(N)).")] = 0,
    nprobe: Annotated[int, typer.Option("--nprobe", min=1, help="IVF lists searched per query.")] = 32,
    batch_size: BatchSize = 64,
    workers: LoaderWorkers = None,
    device: Device = "auto",
    precision: PrecisionOpt = "auto",
    force: Force = False,
) -> None:
    """Build a 1:N gallery index (each image embedded once), or add/remove images of an existing one."""
    from facecli.engine.gallery import build_index

    if gallery_dir is None and add is None and not remove:
        raise FaceCliError("index needs GALLERY_DIR to build, or --add DIR / --remove NAME to change --out")
    if gallery_dir is not None and checkpoint is None:
        raise FaceCliError("building a gallery needs --checkpoint")
    gallery, embedded, skipped = build_index(
        checkpoint,
        out,
        _runtime(device, precision),
        gallery_dir,
        add,
        remove,
        template,
        index_type,
        nlist,
        batch_size,
        workers,
        force,
        nprobe,
    )  # type: ignore[arg-type]
    console.print(
        f"{out}: {len(set(gallery.identities))} identities, {len(gallery.identities)} images "
        f"({embedded} embedded now, {skipped} unreadable skipped), {gallery.index_type} search"
    )


@command("identify")
def identify_command(
    query: Annotated[Path, typer.Argument(help="An image, or a folder of images.")],
    index: Annotated[Path, typer.Option("--index", help="Gallery index from facecli index.")],
    out: Annotated[Path, typer.Option("--out", help="CSV: query, identity, score, top-k identities and scores.")],
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Identities to list per query.")] = 5,
    threshold: Annotated[float | None, typer.Option("--threshold", help="Below this best score: unknown.")] = None,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", "-c", help="Model (default: the gallery's).")
    ] = None,
    batch_size: BatchSize = 64,
    workers: LoaderWorkers = None,
    device: Device = "auto",
    precision: PrecisionOpt = "auto",
    force: Force = False,
) -> None:
    """Who is this? Top-k gallery identities per query, open set with --threshold."""
    from facecli.engine.gallery import identify

    table = identify(
        index, query, out, _runtime(device, precision), top_k, threshold, checkpoint, batch_size, workers, force
    )
    console.print(f"wrote {len(table)} rows to {out}")


@command("eval-identify")
def eval_identify_command(
    index: Annotated[Path, typer.Option("--index", help="Gallery index from facecli index.")],
    probes: Annotated[
        Path, typer.Option("--probes", help="Image-folder probes; identities not in the gallery are unknowns.")
    ],
    plot: Annotated[Path | None, typer.Option("--plot", help="Write the CMC curve.")] = None,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", "-c", help="Model (default: the gallery's).")
    ] = None,
    batch_size: BatchSize = 64,
    workers: LoaderWorkers = None,
    device: Device = "auto",
    precision: PrecisionOpt = "auto",
    force: Force = False,
) -> None:
    """Rank-1/rank-5 identification rate, CMC, and DIR at FAR for open-set probes."""
    from facecli.engine.gallery import evaluate_identification

    r = evaluate_identification(
        index, probes, _runtime(device, precision), plot, checkpoint, batch_size, workers, force
    )
    console.print(identification_table(r))


def main() -> None:
    """Console-script entry point."""
    app()
