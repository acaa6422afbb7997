"""What a training run reports: progress bar, metrics.csv, TensorBoard events, the final summary."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from facecli.console import err_console, printable
from facecli.fileio import write_csv_atomic
from facecli.training.options import TrainOptions

# curves.png costs ~0.7 s a plot on 2 CPU cores (matplotlib), 6% of a 210 s run at 20 plots (measured with
# cProfile, 2026-11-29): a plot waits until the run has spent PLOT_WAIT times the last one's cost since it,
# which keeps plotting near 2% of the run; the run's last epoch is always plotted.
PLOT_WAIT = 50


@dataclass
class TrainResult:
    """How a run ended and where its files are."""

    run_dir: Path
    stopped: str  # "finished", "early stop", "over time", "interrupted" or "bad images" (past --max-bad-fraction)
    epochs_done: int
    steps: int
    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    best_accuracy: float | None = None
    best_score: float | None = None  # the mean validation AUC that chose the best epoch (state.Best)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # what the run adapted or left out, as the log said it
    bad_images: int = 0  # images that failed to decode during the run (listed in bad_images.txt)

    @property
    def last(self) -> dict:
        return self.history[-1] if self.history else {}


class RunLog:
    """Rank 0's view of the run; every method is a no-op on other ranks."""

    def __init__(self, run_dir: Path, enabled: bool, tensorboard: bool, purge_step: int | None) -> None:
        self.run_dir, self.enabled = run_dir, enabled
        self.writer = None
        if enabled and tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge_step)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.2e}  {task.fields[speed]:.0f} img/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            disable=not enabled,
        )
        self.task = None
        self.epoch_start, self.images = time.perf_counter(), 0
        self.notes: list[str] = []
        self.plotted_at, self.plot_seconds = -float("inf"), 0.0

    def __enter__(self) -> RunLog:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()
        if self.writer is not None:
            self.writer.close()

    def start_epoch(self, epoch: int, epochs: int, batches: int, done: int) -> None:
        self.epoch_start = time.perf_counter()
        self.images = 0
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(
            f"epoch {epoch + 1}/{epochs}", total=batches, completed=done, loss=0.0, lr=0.0, speed=0.0
        )

    def step(self, step: int, loss: float, lr: float, images: int) -> None:
        self.images += images
        self.progress.update(self.task, advance=1, loss=loss, lr=lr, speed=self.images_per_second)
        if self.writer is not None:
            self.writer.add_scalar("train/loss", loss, step)
            self.writer.add_scalar("train/lr", lr, step)

    @property
    def images_per_second(self) -> float:
        return self.images / max(1e-9, time.perf_counter() - self.epoch_start)

    def end_epoch(self, row: dict, history: list[dict], plot: bool = True, last: bool = False) -> None:
        """Print the epoch's line, rewrite metrics.csv (and curves.png where `plot` asks and the last plot's
        cost allows, or on the run's `last` epoch), log validation scalars."""
        if not self.enabled:
            return
        shown = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())
        err_console.print(shown, highlight=False)
        write_csv_atomic(self.run_dir / "metrics.csv", pd.DataFrame(history))
        if last or (plot and time.perf_counter() - self.plotted_at >= PLOT_WAIT * self.plot_seconds):
            self._plot(history)
        if self.writer is not None:
            for key, value in row.items():
                if key.startswith("val_") and value is not None:
                    self.writer.add_scalar(f"val/{key[4:]}", value, row["step"])
            self.writer.flush()

    def _plot(self, history: list[dict]) -> None:
        from facecli.plots import training_curves

        start = time.perf_counter()
        training_curves(history, self.run_dir / "curves.png")
        self.plotted_at = time.perf_counter()
        self.plot_seconds = self.plotted_at - start

    def recipe(self, options: TrainOptions) -> None:
        """The run's recipe as one table: each choice, who made it and why."""
        if not self.enabled or not options.recipe:
            return
        table = Table(title="recipe", title_justify="left")
        for column in ("option", "value", "by", "why"):
            table.add_column(column, overflow="fold")
        for name, choice in options.recipe.items():
            table.add_row(name, printable(choice["value"]), choice["by"], choice["reason"])
        err_console.print(table)

    def note(self, text: str) -> None:
        """One line in the log, kept for the run's result."""
        self.notes.append(text)
        if self.enabled:
            err_console.print(Text(printable(text)))
