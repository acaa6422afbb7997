"""Where a run stands: epoch, batch, step, history, the best epoch so far and the epoch's loss sum; saved in
`last_state.pt` beside the weights and optimizer, read back to resume exactly."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

# The best model is judged by the mean validation AUC of the last SMOOTHING validations: one validation's
# accuracy on a few held-back identities swings by 0.1-0.2, and choosing by it kept early epochs: 0.776 on unseen
# people against 0.824 by the rule below (RESULTS.md, "Which epoch a run keeps", benchmarks/model_selection.py).
SMOOTHING = 3


@dataclass
class Best:
    """The best epoch so far: by the mean validation AUC of the last SMOOTHING validations where the run
    validates (ties to the later epoch), else by mean training loss."""

    accuracy: float = -math.inf  # the best epoch's own validation accuracy
    loss: float = math.inf
    epoch: int | None = None
    stale: int = 0  # epochs judged since the score last improved
    score: float = -math.inf  # the smoothed AUC that made it the best
    recent: list[float] = field(default_factory=list)  # the last SMOOTHING validations' AUC

    def update(self, epoch: int, loss: float, accuracy: float | None = None, auc: float | None = None) -> bool:
        """Judge a finished epoch (1-based), validated or not; True when it is the model to keep. An equal
        score keeps the later model but is no improvement: a plateau runs the patience out."""
        if accuracy is None:
            kept = better = loss < self.loss
        else:
            self.recent = [*self.recent, auc][-SMOOTHING:]
            score = sum(self.recent) / len(self.recent)
            kept, better = score >= self.score, score > self.score
            if kept:
                self.score, self.accuracy = score, accuracy
        if kept:
            self.loss, self.epoch = loss, epoch
        self.stale = 0 if better else self.stale + 1
        return kept

    @property
    def best_accuracy(self) -> float | None:
        return self.accuracy if math.isfinite(self.accuracy) else None

    @property
    def best_score(self) -> float | None:
        return self.score if math.isfinite(self.score) else None


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
    images: int = 0  # in the training set the run started with (0: a state saved before this was kept)

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
        return {
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "history": self.history,
            "best": asdict(self.best),
            "loss_sum": [self.loss_sum, self.losses],
            "bad_images": self.bad_images,
            "images": self.images,
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
            images=int(saved.get("images", 0)),
        )
