"""`facecli train`: data -> step -> log, epoch after epoch; resumable at any step, one or many processes."""

from __future__ import annotations

import contextlib
import itertools
import math
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from facecli.errors import FaceCliError
from facecli.training import distributed
from facecli.training.bad_images import BadImages
from facecli.training.options import TrainOptions, save_options
from facecli.training.run_folder import LAST_FILE, check_outside_data, run_folder_lock
from facecli.training.run_log import RunLog, TrainResult
from facecli.training.setup import Run, StepHook, lr_schedule, set_up
from facecli.training.state import TrainState
from facecli.training.step import train_step
from facecli.verification.metrics import VerificationReport


@dataclass
class StopRequest:
    """Set by Ctrl-C or SIGTERM; the loop checks it between steps."""

    requested: bool = False


@contextlib.contextmanager
def stop_requests() -> Iterator[StopRequest]:
    """Ctrl-C (or SIGTERM) asks the loop to stop and save; a second Ctrl-C stops at once."""
    request = StopRequest()

    def handler(signum: int, frame: object) -> None:
        request.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def train(
    options: TrainOptions, *, resume: bool = False, force: bool = False, step_hook: StepHook | None = None
) -> TrainResult:
    """Train (or, with `resume`, continue) the run in `options.run_dir`; rank 0 writes every file.

    `step_hook(step, loss)`, called after each optimizer step, returns the loss the loop keeps (tests)."""
    started = time.perf_counter()
    options = options.check()
    check_outside_data(options.run_dir, options.data)
    proc, device = distributed.start(options.device)
    try:
        with run_folder_lock(options.run_dir, proc.is_main) as lock_note:
            run, state = set_up(
                options,
                proc,
                device,
                resume=resume,
                force=force,
                lock_note=lock_note,
                step_hook=step_hook,
                started=started,
            )
            with stop_requests() as stop, run.log:
                stopped = _train_epochs(run, state, stop)
    finally:
        distributed.stop()
    return TrainResult(
        run_dir=run.options.run_dir,
        stopped=stopped,
        epochs_done=state.epoch,
        steps=state.step,
        history=state.history,
        best_epoch=state.best.epoch,
        best_accuracy=state.best.best_accuracy,
        best_score=state.best.best_score,
        seconds=time.perf_counter() - started,
        notes=run.log.notes,
        bad_images=len(run.bad),
    )


def _train_epochs(run: Run, state: TrainState, stop: StopRequest) -> str:
    """Epochs until the last, an early stop, an interruption or too many bad images; how it stopped."""
    run.model.train()
    run.sampler.set_epoch(state.epoch, state.batch)
    batches = iter(run.loader)  # one iterator for the whole run: workers prefetch across epoch ends
    while state.epoch < run.options.epochs:
        stopped = _train_epoch(run, state, batches, stop) or _end_epoch(run, state)
        if stopped:
            return stopped
        if _resized(run, state):  # the sampler's batches drawn again from here, for its new length
            run.sampler.set_epoch(state.epoch)
            batches = iter(run.loader)
    return "finished"


def _resized(run: Run, state: TrainState) -> bool:
    """The run's length re-measured from its own epochs, once (run_length.RunPace): the options, sampler,
    lr schedule and config.json follow rank 0's new length; whether it changed."""
    if not run.pace.active:
        return False
    resized = run.pace.resized(run.options, state.epoch)
    run.pace.active, resized = run.proc.gather([(run.pace.active, resized)])[0]  # every rank as rank 0
    if resized is None:
        return False
    planned, run.options = run.options.epochs, resized
    run.sampler.epochs = resized.epochs
    run.scheduler.lr_lambdas = [lr_schedule(resized, len(run.sampler))] * len(run.optimizer.param_groups)
    if run.proc.is_main:
        save_options(resized, resized.run_dir / "config.json")
    run.log.note(f"length re-measured ({planned} epochs planned): {resized.recipe['epochs']['reason']}")
    return True


def _train_epoch(run: Run, state: TrainState, batches: Iterator, stop: StopRequest) -> str | None:
    """The epoch's remaining steps; "interrupted" or "bad images" where it stops before its end."""
    options, sampler = run.options, run.sampler
    _freeze_trunk(run, state.epoch < options.freeze_trunk_epochs)
    run.log.start_epoch(state.epoch, options.epochs, len(sampler), state.batch)
    for images, labels, failures, kept in itertools.islice(batches, len(sampler) - state.batch):
        if _past_bad_limit(run, failures):
            _read_losses(run, state)
            run.saver.save(state)  # before this batch: a resume takes it again
            run.log.note(run.bad.stop_message())
            return "bad images"
        if not kept.all():  # no image of the identity could be read
            images, labels = images[kept], labels[kept]
        _step(run, state, images, labels)
        saving = bool(options.checkpoint_every) and state.step % options.checkpoint_every == 0
        if not (run.pending.due or saving or state.batch == len(sampler)):
            continue
        _read_losses(run, state)
        if run.proc.any(stop.requested):
            run.saver.save(state)
            return "interrupted"
        if saving:
            run.saver.save(state)
    return None


def _step(run: Run, state: TrainState, images: torch.Tensor, labels: torch.Tensor) -> None:
    """One optimizer step on a batch of uint8 images from the loader; its loss is kept, not read back yet."""
    images = run.model.config.preprocessing.normalize(run.runtime.batch(images))
    loss = train_step(run.net, images, labels, run.optimizer, run.precision, run.options.clip_grad)
    if run.step_hook is not None:
        loss = run.step_hook(state.step + 1, loss)
    lr = _lr(run.optimizer)
    run.scheduler.step()
    state.step, state.batch = state.step + 1, state.batch + 1
    run.pending.add(loss, state.step, lr, len(images) * run.proc.world_size)


def _end_epoch(run: Run, state: TrainState) -> str | None:
    """Validate, judge and record the finished epoch, save what is due; "early stop" where patience ran out."""
    options, validation = run.options, run.validation
    number = state.epoch + 1
    validate = validation is not None and (number % (options.val_every or 1) == 0 or number == options.epochs)
    report = validation(run.model) if validate else None
    if report is not None and validation.note:
        run.log.note(validation.note)
    row = _row(state, _lr(run.optimizer), run.log.images_per_second, report)
    judged = validation is None or validate  # by validation AUC where there is validation, else by loss
    scores = (report.accuracy_mean, report.auc) if report is not None else ()
    if judged and state.best.update(number, state.mean_loss, *scores):
        run.saver.save_best(report)
    state.next_epoch(row)
    patience_out = run.proc.from_main(run.early_stop(state.best))
    over_time = state.epoch < options.epochs and run.proc.from_main(run.deadline.passed())
    last = state.epoch == options.epochs or patience_out or over_time
    if last or run.proc.from_main(run.saver.due()):
        run.saver.save(state)  # every rank, or none
    plot = validate if validation is not None else state.epoch % max(1, options.epochs // 20) == 0
    run.log.end_epoch(row, state.history, plot=plot, last=last)  # at most about 20 plots a run
    if patience_out and state.epoch < options.epochs:
        run.log.note(f"no better validation in {options.patience} validation(s): stopping early")
        return "early stop"
    if over_time:
        run.log.note(
            f"over time: past {run.deadline.seconds:.0f} s, the deadline of --time-budget {options.time_budget:g} s "
            f"(steps ran slower than measured at the start); stopped after epoch {state.epoch} of {options.epochs} "
            "(--resume continues it)"
        )
        return "over time"
    return None


def _read_losses(run: Run, state: TrainState) -> None:
    """Read the kept losses back (one host sync): into the epoch's mean and the log; stop at a non-finite one."""
    for step, value, lr, images in run.pending.read():
        if not math.isfinite(value):
            batch = state.batch - (state.step - step)
            last = run.options.run_dir / LAST_FILE
            kept = f"{last} is the last good checkpoint" if last.is_file() else "no checkpoint was saved yet"
            raise FaceCliError(
                f"loss became {value} at step {step} (epoch {state.epoch + 1}, batch {batch}); "
                f"stopped without saving, {kept}. Lower --lr, add --clip-grad or train in fp32."
            )
        state.add_loss(value)
        run.log.step(step, value, lr, images)


def _past_bad_limit(run: Run, failures: list[str]) -> bool:
    """Record the batch's images that failed to decode, on every rank; True when the run is past its limit."""
    failed = [line for text in failures if text for line in text.split("\n")]
    return run.proc.any(bool(failed)) and _record_bad(run.bad, run.proc.gather(failed), run.log)


def _record_bad(bad: BadImages, failures: list[str], log: RunLog) -> bool:
    """Record images that failed to decode (noting the first in the log); True when past the limit."""
    seen = len(bad)
    if bad.add(failures) and not seen:
        log.note(bad.first_note())
    return bad.over_limit


def _freeze_trunk(run: Run, frozen: bool) -> None:
    """While fine-tuning starts, only the neck and head learn: no trunk gradients, BatchNorm statistics kept."""
    run.model.trunk.requires_grad_(not frozen)
    run.model.trunk.train(not frozen)


def _lr(optimizer: torch.optim.Optimizer) -> float:
    """The lr now (the trunk's may be lower with --trunk-lr-mult)."""
    return max(group["lr"] for group in optimizer.param_groups)


def _row(state: TrainState, lr: float, speed: float, report: VerificationReport | None) -> dict:
    """The finished epoch's line of metrics.csv."""
    row = {"epoch": state.epoch + 1, "step": state.step, "loss": state.mean_loss, "lr": lr, "images_per_s": speed}
    if report is not None:
        row |= {"val_accuracy": report.accuracy_mean, "val_std": report.accuracy_std, "val_auc": report.auc}
        row["val_eer"] = report.eer
    return row
