"""A run set up: options planned from the data, model, loss, optimizer and schedule, loader, log and saver,
and where it stands (a new run, or the state it resumes from)."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

import facecli.losses  # noqa: F401  (registers the losses)
from facecli.checkpoint import read_config
from facecli.data.batch_plan import BatchPlan, plan_batches
from facecli.data.samplers import TrainBatchSampler
from facecli.data.training_set import TrainImages, TrainingSet, decoded_cache_budget, read_training_set, train_loader
from facecli.data.workers import default_workers
from facecli.errors import FaceCliError
from facecli.fileio import same_files, write_text_atomic
from facecli.losses.margin import quality_of
from facecli.losses.options import build_loss
from facecli.models import FaceEmbedder, ModelConfig, create_model, default_config
from facecli.runtime import Runtime, resolve_runtime
from facecli.training import distributed
from facecli.training.bad_images import BadImages
from facecli.training.finetune import fine_tune_config, start_from
from facecli.training.holdout import hold_back, write_holdout
from facecli.training.optim import build_optimizer, effective_lr, lr_factor
from facecli.training.options import TrainOptions, save_options
from facecli.training.pending_losses import PendingLosses
from facecli.training.precision import Precision, precision_for
from facecli.training.probe import probe_labels, seconds_per_step
from facecli.training.recipe import fingerprint, plan, warnings
from facecli.training.run_folder import check_same_identities, check_same_images, existing_run
from facecli.training.run_length import RunPace, fitted_size, hopeless_step, size_run
from facecli.training.run_log import RunLog
from facecli.training.saver import StateSaver
from facecli.training.sharded_head import describe, ignore_in_ddp, sharded
from facecli.training.state import Deadline, EarlyStopping, TrainState
from facecli.training.step import TrainStep
from facecli.training.validation import Validation

StepHook = Callable[[int, torch.Tensor], torch.Tensor]  # (step done, its loss) -> the loss the loop keeps


@dataclass
class Run:
    """Everything a run is made of once set up; the loop reads it and changes only the TrainState."""

    options: TrainOptions
    proc: distributed.Process
    runtime: Runtime
    model: FaceEmbedder
    net: nn.Module  # the model and loss as one module, wrapped by DDP across processes
    sampler: TrainBatchSampler
    loader: DataLoader
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    precision: Precision
    saver: StateSaver
    log: RunLog
    bad: BadImages
    validation: Validation | None
    early_stop: EarlyStopping
    pending: PendingLosses
    deadline: Deadline
    pace: RunPace
    step_hook: StepHook | None = None  # tests: see or replace each step's loss


def set_up(
    options: TrainOptions,
    proc: distributed.Process,
    device: str,
    *,
    resume: bool,
    force: bool,
    lock_note: str | None,
    started: float,
    step_hook: StepHook | None = None,
) -> tuple[Run, TrainState]:
    """The run, and the state it starts from; every check that can fail runs before an old run is replaced.
    `started` (time.perf_counter()) is when the run began: its time budget counts from then."""
    runtime = resolve_runtime(device, options.precision, options.channels_last, options.compile)
    replaced = existing_run(options.run_dir, resume, force) if proc.is_main else []
    init = read_config(options.init) if options.init is not None else None  # a bad file fails before any work
    data = read_training_set(options.data, options.root, options.columns)
    warned: list[str] = []
    fp = fingerprint(data, str(runtime.device))
    if fp.with_positives == 0:  # every loss would then learn to tell photos apart, not people
        raise FaceCliError(
            f"{options.data}: each of the {fp.identities} identities has one image, so no photo shows a person twice; "
            "training needs 2 or more images of at least some of them"
        )
    if not resume:
        options = plan(options, fp, init).check()
        warned = warnings(options, fp)
    for path in replaced:  # --force: the old run goes once the new one has passed every check
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    workers = default_workers() if options.workers is None else options.workers
    held_back = None
    if options.val_holdout:
        data, table, root = hold_back(data, options.val_holdout, options.seed)
        held_back = (table, root)
    if resume:
        check_same_identities(options.run_dir, data.classes)
    # the memory format chosen for training, which validation keeps: converting the training model to the
    # inference format in place made a validated run differ from the same run resumed (issue 33)
    runtime = runtime.for_model(options.backbone, training=True)
    validation = _validation(options, runtime, workers) if proc.is_main and held_back is None else None
    warned += _trained_on(validation, data) + _listed_twice(data)

    build = functools.partial(_trainable, data=data, init=init, colour=fp.colour, runtime=runtime, proc=proc)
    parts = build(options)
    if options.epochs is None:  # sized to the time budget at the step time measured here
        val_images = _images_of(held_back[0]) if held_back is not None else validation.images if validation else 0
        options, parts = _sized(options, parts, val_images, proc, build, started)
    model, loss, step_module, batches = parts.model, parts.loss, parts.step_module, parts.batches
    optimizer, precision, lr = parts.optimizer, parts.precision, parts.lr
    sampler = TrainBatchSampler(batches, epochs=options.epochs, seed=options.seed)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule(options, len(sampler)))
    saver = StateSaver(options.run_dir, model, loss, optimizer, scheduler, precision, proc.is_main)
    state = saver.restore() if resume else _new_run(options, data, proc)
    if resume:
        check_same_images(options.run_dir, state.images, len(data.paths))
    if held_back is not None and proc.is_main:
        validation, note = _held_back_validation(options, runtime, workers, *held_back)
        lock_note = "; ".join(n for n in (lock_note, note) if n)

    net = _wrapped(step_module, loss, options, proc)
    images = TrainImages(data, model.config.preprocessing, options.aug, decoded_cache_budget())
    log = RunLog(options.run_dir, proc.is_main, options.tensorboard, state.step if resume else None)
    run = Run(
        options=options,
        proc=proc,
        runtime=runtime,
        model=model,
        net=net,
        sampler=sampler,
        loader=train_loader(images, sampler, workers, runtime.device),
        optimizer=optimizer,
        scheduler=scheduler,
        precision=precision,
        saver=saver,
        log=log,
        bad=BadImages(options.run_dir, len(data.paths), options.max_bad_fraction, proc.is_main, state.bad_images),
        validation=validation,
        early_stop=EarlyStopping(options.patience),
        pending=PendingLosses.for_device(runtime.device),
        deadline=Deadline(options.time_budget, started),
        pace=RunPace(started, active=not resume and options.sized_by_budget()),
        step_hook=step_hook,
    )
    if proc.is_main:
        notes = [lock_note, parts.start_note, describe(loss), *sampler.plan.notes, *warned]
        _first_notes(run, data, lr, notes)
    return run, state


def lr_schedule(options: TrainOptions, steps_per_epoch: int) -> Callable[[int], float]:
    """The lr multiplier at each step of the options' schedule."""
    return lr_factor(
        options.scheduler, steps_per_epoch, options.epochs, options.warmup_epochs, options.lr_steps, options.lr_gamma
    )


def _validation(options: TrainOptions, runtime: Runtime, workers: int) -> Validation | None:
    """The validation set, checked once; None where none is given."""
    if options.val_pairs is None and options.val_bin is None:
        return None
    pairs = options.val_pairs
    root = options.val_root if options.val_root is not None else pairs.parent if pairs is not None else None
    return Validation(
        pairs=pairs,
        root=root,
        runtime=runtime,
        batch_size=options.val_batch_size,
        workers=workers,
        bin_set=options.val_bin,
    )


def _trained_on(validation: Validation | None, data: TrainingSet) -> list[str]:
    """A warning where the validation pairs' images are training images: the epoch kept is then the one that
    remembers them best, not the one that tells unseen people apart."""
    if validation is None or validation.checked is None:
        return []
    images = {os.path.realpath(p) for p in validation.checked.resolved.values()}
    shared = len(same_files(images, data.paths))
    if not shared:
        return []
    return [
        f"warning: {shared} of the {len(images)} --val-pairs images are training images (or copies), so the epoch "
        "kept is the one that remembers them best; validate on people left out of training (without --val-pairs "
        "the run holds some back itself)"
    ]


def _listed_twice(data: TrainingSet) -> list[str]:
    """A warning where an image is listed under two identities: the run is told it is both people."""
    twice = data.under_two_labels()
    if not twice:
        return []
    return [f"warning: {len(twice)} image(s) listed under two or more identities (such as {twice[0]}); the run "
            "learns each as every one of them: fix the list"]  # fmt: skip


def _held_back_validation(
    options: TrainOptions, runtime: Runtime, workers: int, table: pd.DataFrame, root: Path
) -> tuple[Validation, str]:
    """Validation on the identities held back from training, its pairs written into the run folder."""
    pairs = write_holdout(table, options.run_dir)
    validation = Validation(pairs=pairs, root=root, runtime=runtime, batch_size=options.val_batch_size, workers=workers)
    note = f"validation: {options.val_holdout} identities held back, {len(table)} pairs in {pairs} (--root {root})"
    return validation, note


def _model(
    options: TrainOptions, num_classes: int, init: ModelConfig | None, colour: str
) -> tuple[FaceEmbedder, str | None]:
    """A fresh model, or with --init one that starts from the file's trunk (and neck where it fits)."""
    if init is None:
        config = default_config(
            options.backbone, options.embedding_size, options.img_size, options.dropout,
            loss=options.loss, num_classes=num_classes, quality=quality_of(options.loss), colour=colour,
        )  # fmt: skip
        return create_model(config), None
    if options.backbone != init.backbone:
        raise FaceCliError(
            f"--init {options.init} is a {init.backbone} model; --backbone {options.backbone} cannot start from it"
        )
    config = fine_tune_config(
        init, options.embedding_size, options.img_size, options.dropout, options.loss, num_classes, colour
    )
    return start_from(options.init, config)


def _batch_plan(options: TrainOptions, data: TrainingSet, proc: distributed.Process) -> BatchPlan:
    return plan_batches(
        data.labels,
        batch_size=options.batch_size,
        kind=options.sampler_kind(),
        k=options.images_per_identity,
        rank=proc.rank,
        world_size=proc.world_size,
        file_order=np.argsort(data.offsets, kind="stable") if data.offsets is not None else None,
    )


@dataclass
class Trainable:
    """What the options build before a step is taken: model, loss, batches and optimizer."""

    model: FaceEmbedder
    loss: nn.Module
    step_module: nn.Module  # model and loss as one module, on the device
    batches: BatchPlan
    precision: Precision
    lr: float
    optimizer: torch.optim.Optimizer
    start_note: str | None  # where --init's weights went


def _trainable(
    options: TrainOptions,
    data: TrainingSet,
    init: ModelConfig | None,
    colour: str,
    runtime: Runtime,
    proc: distributed.Process,
) -> Trainable:
    """The options' model, loss and optimizer, seeded so that the same options give the same weights."""
    torch.manual_seed(options.seed + proc.rank)
    np.random.seed(options.seed + proc.rank)
    model, start_note = _model(options, data.num_classes, init, colour)
    loss = build_loss(options.loss, model.config.embedding_size, data.num_classes, options.loss_options())
    # compiled inside TrainStep (the embedding only), so prepare() just moves it and sets the memory format
    step_module = dataclasses.replace(runtime, compile=False).prepare(TrainStep(model, loss, options.compile))
    precision = precision_for(runtime)
    lr = effective_lr(options.lr, options.batch_size * proc.world_size, options.lr_scale_batch)
    optimizer = _optimizer(options, model, step_module, lr, precision)
    return Trainable(model, loss, step_module, _batch_plan(options, data, proc), precision, lr, optimizer, start_note)


def _sized(
    options: TrainOptions,
    parts: Trainable,
    val_images: int,
    proc: distributed.Process,
    rebuild: Callable[[TrainOptions], Trainable],
    started: float,
) -> tuple[TrainOptions, Trainable]:
    """The run's length from the step time measured here and the budget left since the run `started`
    (perf_counter); where the recipe chose the input size and too few epochs fit the budget at it, a smaller
    one (the model rebuilt and timed again)."""
    seconds = _step_seconds(parts, proc, hopeless_step(options, parts.batches.steps_per_epoch))
    smaller = fitted_size(options, seconds, parts.batches.steps_per_epoch)
    if smaller is not None:
        options, parts = smaller, rebuild(smaller)
        seconds = _step_seconds(parts, proc)
    spent = max(proc.gather([time.perf_counter() - started]))  # every rank plans the same run
    return size_run(options, seconds, parts.batches.steps_per_epoch, val_images, spent), parts


def _step_seconds(parts: Trainable, proc: distributed.Process, give_up_above: float = math.inf) -> float:
    """One step's time on this machine (the slowest rank's, so that every rank plans the same run)."""
    batches, config = parts.batches, parts.model.config
    labels = probe_labels(batches.batch_size, batches.k if batches.kind == "pk" else None, len(batches.by_class))
    seconds = seconds_per_step(
        parts.step_module, parts.optimizer, parts.precision, config.preprocessing, labels, config.input_size[0],
        give_up_above,
    )  # fmt: skip
    return max(proc.gather([seconds]))


def _images_of(table: pd.DataFrame) -> int:
    return len(set(table["imageA"]) | set(table["imageB"]))


def _optimizer(
    options: TrainOptions, model: FaceEmbedder, step_module: nn.Module, lr: float, precision: Precision
) -> torch.optim.Optimizer:
    slow = {id(p): options.trunk_lr_mult for p in model.trunk.parameters()} if options.trunk_lr_mult is not None else {}
    return build_optimizer(
        step_module,
        options.optimizer,
        lr,
        options.weight_decay,
        momentum=options.momentum,
        lr_mult=slow,
        scaled=precision.scales,
    )


def _new_run(options: TrainOptions, data: TrainingSet, proc: distributed.Process) -> TrainState:
    """A new run's folder with its options and classes; the state of a run not started."""
    if proc.is_main:
        options.run_dir.mkdir(parents=True, exist_ok=True)
        save_options(options, options.run_dir / "config.json")
        write_text_atomic(options.run_dir / "classes.txt", "".join(f"{n};{c}\n" for n, c in enumerate(data.classes)))
    return TrainState(images=len(data.paths))


def _wrapped(step_module: nn.Module, loss: nn.Module, options: TrainOptions, proc: distributed.Process) -> nn.Module:
    """The step module, wrapped by DDP across processes."""
    if not proc.distributed:
        return step_module
    ignore_in_ddp(step_module, loss)  # a Partial FC head's rows are each rank's own
    if options.clip_grad and sharded(loss):
        raise FaceCliError("--clip-grad cannot clip a Partial FC head sharded across processes by one norm")
    # while the trunk is frozen DDP must expect parameters without gradients
    return DistributedDataParallel(step_module, find_unused_parameters=options.freeze_trunk_epochs > 0)


def _first_notes(run: Run, data: TrainingSet, lr: float, notes: list[str | None]) -> None:
    """The log's opening: runtime, data, model and schedule in one line, the recipe table, then any notes."""
    options, log = run.options, run.log
    log.note(
        f"{run.runtime.describe()}; {run.proc.world_size} process(es); {len(data.paths)} images of "
        f"{data.num_classes} identities; {options.loss} on {options.backbone} {run.model.config.input_size[0]}px; "
        f"{len(run.sampler)} steps per epoch; lr {lr:g}"
    )
    log.recipe(options)
    for note in notes:
        if note:
            log.note(note)
    if data.left_out:
        first, reason = data.left_out[0]
        log.note(
            f"left out {len(data.left_out)} unusable image(s), first {first}: {reason} "
            f"(list them all with: facecli annotate {data.source} --check)"
        )
