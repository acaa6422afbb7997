"""`facecli train`: data, forward, loss, backward, step, log; resumable at any step, one or many processes."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import shutil
import signal
import time
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

import facecli.losses  # noqa: F401  (registers the losses)
from facecli.checkpoint import (
    load_training_state,
    read_config,
    restore_rng_state,
    rng_state,
    save_model,
    save_training_state,
)
from facecli.data.samplers import TrainBatchSampler
from facecli.data.training_set import TrainImages, decoded_cache_budget, read_training_set
from facecli.data.workers import default_workers, init_worker, worker_start
from facecli.errors import FaceCliError
from facecli.fileio import write_text_atomic
from facecli.losses.options import build_loss
from facecli.models import FaceEmbedder, ModelConfig, create_model, default_config
from facecli.runtime import resolve_runtime
from facecli.training import distributed
from facecli.training.bad_images import BadImages
from facecli.training.finetune import fine_tune_config, start_from
from facecli.training.optim import build_optimizer, effective_lr, lr_factor
from facecli.training.options import TrainOptions, save_options
from facecli.training.pending_losses import PendingLosses
from facecli.training.recipe import fingerprint, plan
from facecli.training.run_folder import BEST_FILE, LAST_FILE, STATE_FILE, existing_run, run_folder_lock
from facecli.training.run_log import RunLog, TrainResult
from facecli.training.sharded_head import describe, full_state, ignore_in_ddp, load_state, sharded
from facecli.training.step import TrainStep, train_step
from facecli.training.validation import Validation
from facecli.verification.metrics import VerificationReport

STATE_EVERY_S = 30  # end-of-epoch state is saved when this long has passed since the last save, and at the end


@contextlib.contextmanager
def stop_requests() -> Iterator[list[bool]]:
    """Ctrl-C (or SIGTERM) sets a flag the loop checks between steps; a second Ctrl-C stops at once."""
    requested = [False]

    def handler(signum: int, frame: object) -> None:
        requested[0] = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requested
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def train_loader(dataset: TrainImages, sampler: TrainBatchSampler, workers: int, device: torch.device) -> DataLoader:
    """The training batches: worker processes decode and augment ahead of the model."""
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers else None,
        pin_memory=device.type == "cuda",
        worker_init_fn=init_worker,
        multiprocessing_context=worker_start(workers),
        generator=torch.Generator().manual_seed(0),  # keeps the global RNG (dropout) untouched
    )


def _freeze_trunk(model: FaceEmbedder, frozen: bool) -> None:
    """While fine-tuning starts, only the neck and head learn: no trunk gradients, BatchNorm statistics kept."""
    model.trunk.requires_grad_(not frozen)
    model.trunk.train(not frozen)


def _model(options: TrainOptions, num_classes: int, init: ModelConfig | None) -> tuple[FaceEmbedder, str | None]:
    """A fresh model, or with --init one that starts from the file's trunk (and neck where it fits)."""
    if init is None:
        config = default_config(
            options.backbone, options.embedding_size, options.img_size, options.dropout,
            loss=options.loss, num_classes=num_classes,
        )  # fmt: skip
        return create_model(config), None
    if options.backbone != init.backbone:
        raise FaceCliError(
            f"--init {options.init} is a {init.backbone} model; --backbone {options.backbone} cannot start from it"
        )
    config = fine_tune_config(
        init, options.embedding_size, options.img_size, options.dropout, options.loss, num_classes
    )
    return start_from(options.init, config)


def _lr(optimizer: torch.optim.Optimizer) -> float:
    """The lr now (the trunk's may be lower with --trunk-lr-mult)."""
    return max(group["lr"] for group in optimizer.param_groups)


def _row(epoch: int, step: int, loss: float, lr: float, speed: float, report: VerificationReport | None) -> dict:
    row = {"epoch": epoch + 1, "step": step, "loss": loss, "lr": lr, "images_per_s": speed}
    if report is not None:
        row |= {"val_accuracy": report.accuracy_mean, "val_std": report.accuracy_std, "val_auc": report.auc}
        row["val_eer"] = report.eer
    return row


def train(options: TrainOptions, *, resume: bool = False, force: bool = False) -> TrainResult:
    """Train (or, with `resume`, continue) the run in `options.run_dir`; rank 0 writes every file."""
    started = time.perf_counter()
    options = options.check()
    proc, device = distributed.start(options.device)
    try:
        with run_folder_lock(options.run_dir, proc.is_main) as lock_note:
            return _train(options, proc, device, resume, force, started, lock_note)
    finally:
        distributed.stop()


def _train(
    options: TrainOptions,
    proc: distributed.Process,
    device: str,
    resume: bool,
    force: bool,
    started: float,
    lock_note: str | None,
) -> TrainResult:
    runtime = resolve_runtime(device, options.precision, options.channels_last, options.compile)
    replaced = existing_run(options.run_dir, resume, force) if proc.is_main else []
    init = read_config(options.init) if options.init is not None else None  # a bad file fails before any work
    data = read_training_set(options.data, options.root, options.columns)
    if not resume:
        options = plan(options, fingerprint(data, str(runtime.device)), init).check()
    for path in replaced:  # --force: the old run goes once the new one has passed every check
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    workers = default_workers() if options.workers is None else options.workers
    validation = None
    if (options.val_pairs is not None or options.val_bin is not None) and proc.is_main:
        pairs = options.val_pairs
        root = options.val_root if options.val_root is not None else pairs.parent if pairs is not None else None
        validation = Validation(pairs, root, runtime, options.val_batch_size, workers, options.val_bin)

    torch.manual_seed(options.seed + proc.rank)
    np.random.seed(options.seed + proc.rank)
    model, start_note = _model(options, data.num_classes, init)
    loss = build_loss(options.loss, model.config.embedding_size, data.num_classes, options.loss_options())
    # compiled inside TrainStep (the embedding only), so prepare() just moves it and sets the memory format
    runtime = runtime.for_model(model.config.backbone, model.config.input_size[0], training=True)
    step_module = dataclasses.replace(runtime, compile=False).prepare(TrainStep(model, loss, options.compile))
    sampler = TrainBatchSampler(
        data.labels,
        options.epochs,
        options.batch_size,
        options.sampler_kind(),
        options.images_per_identity,
        options.seed,
        proc.rank,
        proc.world_size,
        file_order=np.argsort(data.offsets, kind="stable") if data.offsets is not None else None,
    )
    lr = effective_lr(options.lr, options.batch_size * proc.world_size, options.lr_scale_batch)
    slow = {id(p): options.trunk_lr_mult for p in model.trunk.parameters()} if options.trunk_lr_mult is not None else {}
    optimizer = build_optimizer(
        step_module, options.optimizer, lr, options.weight_decay, options.momentum, slow, runtime.precision == "fp16"
    )
    factor = lr_factor(
        options.scheduler, len(sampler), options.epochs, options.warmup_epochs, options.lr_steps, options.lr_gamma
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    scaler = runtime.grad_scaler()

    state = load_training_state(options.run_dir / STATE_FILE) if resume else None
    epoch, batch, step, history = 0, 0, 0, []
    best = {"accuracy": -math.inf, "loss": math.inf, "epoch": None, "stale": 0}
    loss_sum = [0.0, 0]
    bad = BadImages(options.run_dir, len(data.paths), options.max_bad_fraction, proc.is_main)
    if state is not None:
        model.load_state_dict(state["model"])
        load_state(loss, optimizer, state["loss"], state["optimizer"])  # a sharded head: this rank's rows
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        epoch, batch, step, history, best = (
            state["epoch"],
            state["batch"],
            state["step"],
            state["history"],
            state["best"],
        )
        loss_sum = state["loss_sum"]
        bad.restore(state.get("bad_images", {}))
        restore_rng_state(state["rng"])
    elif proc.is_main:
        options.run_dir.mkdir(parents=True, exist_ok=True)
        save_options(options, options.run_dir / "config.json")
        write_text_atomic(options.run_dir / "classes.txt", "".join(f"{n};{c}\n" for n, c in enumerate(data.classes)))

    frozen_params = options.freeze_trunk_epochs > 0  # DDP must expect parameters without gradients then
    if proc.distributed:
        ignore_in_ddp(step_module, loss)  # a Partial FC head's rows are each rank's own
        if options.clip_grad and sharded(loss):
            raise FaceCliError("--clip-grad cannot clip a Partial FC head sharded across processes by one norm")
    net: nn.Module = (
        DistributedDataParallel(step_module, find_unused_parameters=frozen_params) if proc.distributed else step_module
    )
    train_images = TrainImages(data, model.config.preprocessing, options.aug, decoded_cache_budget())
    loader = train_loader(train_images, sampler, workers, runtime.device)

    saved_at = [time.monotonic()]

    def save_state(path_epoch: int, path_batch: int) -> None:
        saved_at[0] = time.monotonic()
        loss_state, optimizer_state = full_state(loss, optimizer)  # every rank: a sharded head is gathered
        if not proc.is_main:
            return
        save_training_state(
            options.run_dir / STATE_FILE,
            {
                "model": model.state_dict(),
                "loss": loss_state,
                "optimizer": optimizer_state,
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else {},
                "epoch": path_epoch,
                "batch": path_batch,
                "step": step,
                "history": history,
                "best": best,
                "loss_sum": loss_sum,
                "bad_images": bad.found,
                "rng": rng_state(),
            },
        )
        save_model(model, options.run_dir / LAST_FILE, force=True)

    log = RunLog(options.run_dir, proc.is_main, options.tensorboard, step if resume else None)
    if proc.is_main:
        log.note(
            f"{runtime.describe()}; {proc.world_size} process(es); {len(data.paths)} images of {data.num_classes} "
            f"identities; {options.loss} on {options.backbone} {model.config.input_size[0]}px; "
            f"{len(sampler)} steps per epoch; lr {lr:g}"
        )
        log.recipe(options)
        for note in [n for n in (lock_note, start_note, describe(loss)) if n] + sampler.notes:
            log.note(note)
        if data.left_out:
            first, reason = data.left_out[0]
            log.note(
                f"left out {len(data.left_out)} unusable image(s), first {first}: {reason} "
                f"(list them all with: facecli annotate {data.source} --check)"
            )
    pending = PendingLosses.for_device(runtime.device)

    def read_losses(epoch: int, batch: int) -> None:
        """Read the kept losses back (one host sync): into the epoch's mean and the log; stop at a non-finite one."""
        for done_step, value, step_lr, step_images in pending.read():
            if not math.isfinite(value):
                done_batch = batch - (step - done_step)
                raise FaceCliError(
                    f"loss became {value} at step {done_step} (epoch {epoch + 1}, batch {done_batch}); "
                    f"stopped without saving, {options.run_dir / LAST_FILE} is the last good checkpoint. "
                    "Lower --lr, add --clip-grad or train in fp32."
                )
            loss_sum[0], loss_sum[1] = loss_sum[0] + value, loss_sum[1] + 1
            log.step(done_step, value, step_lr, step_images)

    stopped = "finished"
    model.train()
    with stop_requests() as requested, log:
        sampler.set_epoch(epoch, batch)
        batches = iter(loader)  # one iterator for the whole run: workers prefetch across epoch ends
        while epoch < options.epochs:
            _freeze_trunk(model, epoch < options.freeze_trunk_epochs)
            log.start_epoch(epoch, options.epochs, len(sampler), batch)
            for images, labels, failures, kept in itertools.islice(batches, len(sampler) - batch):
                failed = [line for text in failures if text for line in text.split("\n")]
                if proc.any(bool(failed)) and _record_bad(bad, proc.gather(failed), log):
                    read_losses(epoch, batch)
                    save_state(epoch, batch)  # before this batch: a resume takes it again
                    stopped = "bad images"
                    log.note(bad.stop_message())
                    break
                if not kept.all():  # no image of the identity could be read
                    images, labels = images[kept], labels[kept]
                images = model.config.preprocessing.normalize(runtime.batch(images))  # uint8 from the workers
                loss_value = train_step(net, images, labels, optimizer, scaler, runtime, options.clip_grad)
                lr_now = _lr(optimizer)
                scheduler.step()
                step, batch = step + 1, batch + 1
                saving = bool(options.checkpoint_every) and step % options.checkpoint_every == 0
                if not pending.add(loss_value, step, lr_now, len(images) * proc.world_size) and not saving and (
                    batch < len(sampler)
                ):
                    continue
                read_losses(epoch, batch)
                if proc.any(requested[0]):
                    save_state(epoch, batch)
                    stopped = "interrupted"
                    break
                if saving:
                    save_state(epoch, batch)
            if stopped in ("interrupted", "bad images"):
                break
            validate = validation is not None and (
                (epoch + 1) % (options.val_every or 1) == 0 or epoch + 1 == options.epochs
            )
            report = validation(model) if validate else None
            if report is not None and validation.note:
                log.note(validation.note)
            mean_loss = loss_sum[0] / max(1, loss_sum[1])
            row = _row(epoch, step, mean_loss, _lr(optimizer), log.images_per_second, report)
            history.append(row)
            if validation is None or validate:  # best by validation accuracy where there is validation, else loss
                if report.accuracy_mean > best["accuracy"] if report else mean_loss < best["loss"]:
                    best = {
                        "accuracy": report.accuracy_mean if report else -math.inf,
                        "loss": mean_loss,
                        "epoch": epoch + 1,
                        "stale": 0,
                    }
                    if proc.is_main:
                        save_model(model, options.run_dir / BEST_FILE, force=True)
                else:
                    best["stale"] += 1
            epoch, batch, loss_sum = epoch + 1, 0, [0.0, 0]
            patience_out = proc.from_main(options.patience is not None and best["stale"] >= options.patience)
            due = proc.from_main(time.monotonic() - saved_at[0] >= STATE_EVERY_S)  # every rank saves, or none
            if epoch == options.epochs or patience_out or due:
                save_state(epoch, 0)  # tiny epochs would otherwise spend their time writing checkpoints
            plot = validate if validation is not None else epoch % max(1, options.epochs // 20) == 0
            log.end_epoch(row, history, plot=plot or epoch == options.epochs)  # about 20 plots a run
            if patience_out and epoch < options.epochs:
                stopped = "early stop"
                log.note(f"no validation improvement for {options.patience} epoch(s): stopping early")
                break
    return TrainResult(
        run_dir=options.run_dir,
        stopped=stopped,
        epochs_done=epoch,
        steps=step,
        history=history,
        best_epoch=best["epoch"],
        best_accuracy=best["accuracy"] if math.isfinite(best["accuracy"]) else None,
        seconds=time.perf_counter() - started,
        notes=log.notes,
        bad_images=len(bad),
    )


def _record_bad(bad: BadImages, failures: list[str], log: RunLog) -> bool:
    """Record images that failed to decode (noting the first in the log); True when past the limit."""
    seen = len(bad)
    if bad.add(failures) and not seen:
        log.note(bad.first_note())
    return bad.over_limit
