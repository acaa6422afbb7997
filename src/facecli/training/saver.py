"""What a run writes to resume and to use: `last_state.pt` with `last.safetensors` beside it, and
`best.safetensors`; rank 0 writes, every rank takes part in gathering a sharded head."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from facecli.checkpoint import save_model, update_config
from facecli.models import FaceEmbedder
from facecli.training.precision import Precision
from facecli.training.resume_file import load_training_state, restore_rng_state, rng_state, save_training_state
from facecli.training.run_folder import BEST_FILE, LAST_FILE, STATE_FILE
from facecli.training.sharded_head import full_state, load_state
from facecli.training.state import TrainState
from facecli.verification import VerificationReport

STATE_EVERY_S = 30  # end-of-epoch state is saved when this long has passed since the last save, and at the end


@dataclass
class StateSaver:
    """Saves and restores everything a run needs to go on exactly where it stopped."""

    run_dir: Path
    model: FaceEmbedder
    loss: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    precision: Precision
    is_main: bool
    saved_at: float = field(default_factory=time.monotonic)

    def due(self) -> bool:
        """Whether an epoch's end should save: tiny epochs would otherwise spend their time writing states."""
        return time.monotonic() - self.saved_at >= STATE_EVERY_S

    def save(self, state: TrainState) -> None:
        """The state with the model, loss, optimizer, schedule, precision and RNG; then the last model."""
        self.saved_at = time.monotonic()
        loss_state, optimizer_state = full_state(self.loss, self.optimizer)  # every rank: a sharded head is gathered
        if not self.is_main:
            return
        parts = {
            "model": self.model.state_dict(),
            "loss": loss_state,
            "optimizer": optimizer_state,
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.precision.state_dict(),
            "rng": rng_state(),
        }
        save_training_state(self.run_dir / STATE_FILE, parts | state.to_dict())
        save_model(self.model, self.run_dir / LAST_FILE, force=True)

    def save_best(self, report: VerificationReport | None = None) -> None:
        """The model as it is now, as the run's best; with the validation `report` that judged it, carrying the
        threshold that separated the validation pairs best (so `predict` and `compare` can decide with it)."""
        if not self.is_main:
            return
        save_model(self.model, self.run_dir / BEST_FILE, force=True)
        if report is not None:
            update_config(self.run_dir / BEST_FILE, threshold=report.best_threshold, threshold_metric=report.metric)

    def restore(self) -> TrainState:
        """Load the saved state into the model, loss, optimizer, schedule, precision and RNGs."""
        saved = load_training_state(self.run_dir / STATE_FILE)
        self.model.load_state_dict(saved["model"])
        load_state(self.loss, self.optimizer, saved["loss"], saved["optimizer"])  # a sharded head: this rank's rows
        self.scheduler.load_state_dict(saved["scheduler"])
        self.precision.load_state_dict(saved["scaler"])
        restore_rng_state(saved["rng"])
        return TrainState.from_dict(saved)
