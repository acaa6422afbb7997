"""Where a run stands: epoch, batch, step, history, the best epoch so far and the epoch's loss sum; saved in
`last_state.pt` beside the weights and optimizer, read back to resume exactly."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field


@dataclass
class Best:
    """The best epoch so far: by validation accuracy where the run validates, else by mean training loss."""

    accuracy: float = -math.inf
    loss: float = math.inf
    epoch: int | None = None
    stale: int = 0  # epochs judged since the best one

    def update(self, epoch: int, loss: float, accuracy: float | None) -> bool:
        """Judge a finished epoch (1-based); True when it is the new best."""
        improved = accuracy > self.accuracy if accuracy is not None else loss < self.loss
        if improved:
            self.accuracy = accuracy if accuracy is not None else -math.inf
            self.loss, self.epoch, self.stale = loss, epoch, 0
        else:
            self.stale += 1
        return improved

    @property
    def best_accuracy(self) -> float | None:
        return self.accuracy if math.isfinite(self.accuracy) else None


@dataclass(frozen=True)
class EarlyStopping:
    """Stop once `patience` judged epochs in a row have not beaten the best (never when patience is None)."""

    patience: int | None

    def __call__(self, best: Best) -> bool:
        return self.patience is not None and best.stale >= self.patience


# A run sized to a time budget stops at an epoch's end once it has taken this much longer: the step time
# measured at the start can be wrong when other work starts on the machine. Slack for start-up on small budgets.
DEADLINE_FACTOR, DEADLINE_SLACK_S = 1.5, 30.0


@dataclass(frozen=True)
class Deadline:
    """When a run sized to `--time-budget` must stop, whatever its epochs say (None: no deadline)."""

    budget: float | None
    started: float = field(default_factory=time.perf_counter)  # when the run began, time.perf_counter()

    @property
    def seconds(self) -> float | None:
        return None if self.budget is None else DEADLINE_FACTOR * self.budget + DEADLINE_SLACK_S

    def passed(self) -> bool:
        return self.seconds is not None and time.perf_counter() - self.started > self.seconds


@dataclass
class TrainState:
    """The loop's counters and records; `to_dict`/`from_dict` give the keys `last_state.pt` has always had."""

    epoch: int = 0
    batch: int = 0  # batches done in this epoch
    step: int = 0  # optimizer steps done in the run
    history: list[dict] = field(default_factory=list)  # one row per finished epoch (metrics.csv)
    best: Best = field(default_factory=Best)
    loss_sum: float = 0.0  # of this epoch's steps read back so far
    losses: int = 0
    bad_images: dict[str, str] = field(default_factory=dict)  # path -> reason, found during the run

    @property
    def mean_loss(self) -> float:
        return self.loss_sum / max(1, self.losses)

    def add_loss(self, value: float) -> None:
        self.loss_sum, self.losses = self.loss_sum + value, self.losses + 1

    def next_epoch(self, row: dict) -> None:
        """Record the finished epoch's row and start the next one."""
        self.history.append(row)
        self.epoch, self.batch, self.loss_sum, self.losses = self.epoch + 1, 0, 0.0, 0

    def to_dict(self) -> dict:
        best = self.best
        return {
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "history": self.history,
            "best": {"accuracy": best.accuracy, "loss": best.loss, "epoch": best.epoch, "stale": best.stale},
            "loss_sum": [self.loss_sum, self.losses],
            "bad_images": self.bad_images,
        }

    @classmethod
    def from_dict(cls, saved: dict) -> TrainState:
        loss_sum, losses = saved["loss_sum"]
        return cls(
            epoch=saved["epoch"],
            batch=saved["batch"],
            step=saved["step"],
            history=list(saved["history"]),
            best=Best(**saved["best"]),
            loss_sum=loss_sum,
            losses=losses,
            bad_images=dict(saved.get("bad_images", {})),
        )
