"""Options several commands share, each defined once: single options as Annotated types, and the
runtime and loading groups as dataclasses that `command` expands into options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facecli.cli.defaults import Defaults, given, library_constant

if TYPE_CHECKING:
    from facecli.embed import EmbedOptions
    from facecli.runtime import Runtime
    from facecli.verification import PairsInput

RUNTIME_PANEL, LOADING_PANEL = "Runtime", "Loading"
PAIRS = Defaults("verification/scoring", "PairsInput")
RUNTIME = Defaults("runtime", "resolve_runtime")

Force = Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")]
LoaderWorkers = Annotated[
    int | None,
    typer.Option("--workers", min=0, help="Image loader processes (default: cores-1).", rich_help_panel=LOADING_PANEL),
]
ModelFile = Annotated[
    Path | None,
    typer.Option(
        "--checkpoint",
        "-c",
        help="Model file (.safetensors, or .onnx with --backend onnx; default: the newest run's best under runs/).",
    ),
]
GalleryModel = Annotated[Path | None, typer.Option("--checkpoint", "-c", help="Model (default: the gallery's).")]
MinQuality = Annotated[
    float | None,
    typer.Option(
        "--min-quality",
        help="Refuse faces whose quality score is under this instead of matching them (models trained with "
        "--loss magface or adaface; see the quality column facecli embed writes).",
    ),
]
GalleryIndex = Annotated[Path, typer.Option("--index", help="Gallery index from facecli index.")]


def model_or_newest(checkpoint: Path | None) -> Path:
    """-c as given, else the best model of the newest run under ./runs/ (said in one line)."""
    from facecli.workdir import newest_model

    return checkpoint if checkpoint is not None else newest_model()


@dataclass
class RuntimeOptions:
    """Where and how the model runs; an option left out is None and takes the runtime's default."""

    device: Annotated[
        str | None,
        typer.Option("--device", help=RUNTIME("auto, cpu, cuda[:N] or mps", "device"), rich_help_panel=RUNTIME_PANEL),
    ] = None
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision", help=RUNTIME("auto, fp32, fp16 or bf16", "precision"), rich_help_panel=RUNTIME_PANEL
        ),
    ] = None
    channels_last: Annotated[
        bool | None,
        typer.Option(
            "--channels-last/--no-channels-last",
            help="channels_last memory format (default: where measured faster for the backbone and device).",
            rich_help_panel=RUNTIME_PANEL,
        ),
    ] = None
    compile: Annotated[
        bool | None,
        typer.Option(
            "--compile/--no-compile", help=RUNTIME("torch.compile the model", "compile"), rich_help_panel=RUNTIME_PANEL
        ),
    ] = None

    def resolve(self) -> Runtime:
        """The resolved runtime (defaults for what was left out)."""
        from facecli.runtime import resolve_runtime

        return resolve_runtime(
            **given(
                device=self.device, precision=self.precision, channels_last=self.channels_last, compile=self.compile
            )
        )


@dataclass
class LoadingOptions:
    """How images are read and embedded; an option left out is None and takes the default."""

    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            min=1,
            help=f"Images per forward pass (default: {library_constant('embed/backends', 'CPU_TORCH_BATCH')} for "
            f"PyTorch on a CPU, else {library_constant('embed/backends', 'DEFAULT_BATCH')}; measured fastest).",
            rich_help_panel=LOADING_PANEL,
        ),
    ] = None
    workers: LoaderWorkers = None
    flip: Annotated[
        bool | None,
        typer.Option(
            "--flip",
            help="Add the mirrored image's embedding (flip test-time augmentation).",
            rich_help_panel=LOADING_PANEL,
        ),
    ] = None
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache", help="Embedding cache folder (keyed by model and image).", rich_help_panel=LOADING_PANEL
        ),
    ] = None
    align: Annotated[
        str | None,
        typer.Option(
            "--align",
            help="Raw photos: auto (align unless the image has the model's input size), always, or never.",
            rich_help_panel=LOADING_PANEL,
        ),
    ] = None
    align_template: Annotated[
        str | None,
        typer.Option(
            "--align-template",
            help="Alignment template: facenet or arcface (default: arcface for 112 px models).",
            rich_help_panel=LOADING_PANEL,
        ),
    ] = None
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            help="auto (ONNX Runtime on CPUs where faster, exported once and checked), torch, or onnx (.onnx file).",
            rich_help_panel=LOADING_PANEL,
        ),
    ] = None


@dataclass
class EmbeddingOptions(LoadingOptions, RuntimeOptions):
    """Everything a command that embeds images takes: the loading and the runtime groups together."""

    def refuse(self, fields: tuple[str, ...], because: str) -> None:
        """A one-line error naming those of `fields` the user gave, where the command cannot honour them."""
        from facecli.errors import FaceCliError

        given = [f"--{name.replace('_', '-')}" for name in fields if getattr(self, name) is not None]
        if given:
            raise FaceCliError(f"{', '.join(given)}: {because}")

    def embed_options(self, align: str = "never") -> EmbedOptions:
        """The library's embedding options, checked; `align` is the command's default for --align (photos
        commands align, the others take crops)."""
        from facecli.align.warp import TEMPLATES
        from facecli.embed import EmbedOptions
        from facecli.embed.backends import check_backend
        from facecli.embed.faces import ALIGN_MODES
        from facecli.errors import unknown_choice

        if self.align is not None and self.align not in ALIGN_MODES:
            raise unknown_choice("--align", self.align, ALIGN_MODES)
        if self.align_template is not None and self.align_template not in TEMPLATES:
            raise unknown_choice("template", self.align_template, TEMPLATES)
        backend = check_backend(self.backend or "auto")
        runtime = RuntimeOptions.resolve(self)
        return EmbedOptions(
            runtime=runtime,
            backend=backend,
            batch_size=self.batch_size,
            workers=self.workers,
            flip=self.flip,
            cache_dir=self.cache,
            align=self.align or align,
            template=self.align_template,
        )


@dataclass
class PairsOptions:
    """How to read a pairs file and score its pairs."""

    root: Annotated[
        Path | None,
        typer.Option(
            "--root",
            help="Folder the pair paths are relative to (default: where they resolve: beside the pairs file, "
            "its lfw/ subfolder, or the working folder).",
        ),
    ] = None
    metric: Annotated[
        str | None, typer.Option("--metric", help=PAIRS("cosine (similarity) or euclidean (distance)", "metric"))
    ] = None
    fmt: Annotated[str | None, typer.Option("--format", help=PAIRS("auto, lfw, paths or csv", "fmt"))] = None
    columns: Annotated[str | None, typer.Option("--columns", help="CSV columns: image1,image2[,label].")] = None
    allow_outside_root: Annotated[
        bool, typer.Option("--allow-outside-root", help="Allow pair paths that leave --root.")
    ] = False

    def refuse_template_pairs(self) -> None:
        """IJB's template files have their own layout and are scored by cosine: the pair-file options do not apply."""
        from facecli.errors import FaceCliError

        changed = (
            ("--metric", self.metric),
            ("--format", self.fmt),
            ("--columns", self.columns),
            ("--allow-outside-root", self.allow_outside_root or None),
        )
        given = [flag for flag, value in changed if value is not None]
        if given:
            raise FaceCliError(f"{', '.join(given)}: template pairs are IJB's own files, scored by cosine")

    def read(self, pairs: Path) -> PairsInput:
        """The library's pairs input for the file `pairs`, checked."""
        from facecli.verification import PairsInput

        return PairsInput(
            pairs=pairs,
            root=self.root,
            **given(metric=self.metric, fmt=self.fmt),  # type: ignore[arg-type]
            columns=self.columns.split(",") if self.columns else None,
            allow_outside_root=self.allow_outside_root,
        )
