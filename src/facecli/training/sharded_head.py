"""Training state of a Partial FC head sharded across ranks: gathered whole when saved, cut to each rank's
shard when loaded, so `--resume` works with another number of processes and a state file is the same
whatever the world size that wrote it."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from facecli.losses.partial_fc import ClassShard, PartialFCLoss
from facecli.training.optim import load_optimizer_state


def sharded(loss: nn.Module) -> list[str]:
    """The loss's parameters that differ by rank (a Partial FC head under DDP)."""
    return loss.sharded_parameters() if isinstance(loss, PartialFCLoss) else []


def describe(loss: nn.Module) -> str | None:
    """One line for the run log: how the Partial FC head is split and sampled."""
    if not isinstance(loss, PartialFCLoss):
        return None
    shard = loss.shard
    where = f"each of {shard.world_size} processes holds about {shard.size} of" if shard.world_size > 1 else "all"
    return f"Partial FC: {where} {shard.num_classes} class centres; each step scores {loss.sample_rate:g} of them"


def ignore_in_ddp(step_module: nn.Module, loss: nn.Module, prefix: str = "loss.") -> None:
    """Keep DDP from averaging (and checking) the parameters that differ by rank."""
    names = sharded(loss)
    if names:
        nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
            step_module, [prefix + name for name in names]
        )


def _head_entries(loss: PartialFCLoss, optimizer: torch.optim.Optimizer) -> list[tuple[str, int]]:
    """(name, optimizer state key) of each head parameter; state_dict numbers parameters in group order."""
    order = {id(p): n for n, p in enumerate(p for group in optimizer.param_groups for p in group["params"])}
    return [(f"head.{name}", order[id(param)]) for name, param in loss.head.named_parameters()]


def _rows_like(value: object, rows: int) -> bool:
    return torch.is_tensor(value) and value.dim() >= 1 and value.shape[0] == rows


def _rows_per_class(loss: PartialFCLoss) -> int:
    """Rows of the head's centres per class: several for Sub-center ArcFace."""
    return getattr(loss.head, "sub_centers", 1)


def _gather_rows(part: torch.Tensor, shard: ClassShard, per_class: int) -> torch.Tensor:
    """Every rank's rows of a sharded tensor, in class order (gloo's all_gather needs equal sizes: padded);
    a head with several rows per class (sub-centres) keeps each class's rows together."""
    sizes = [ClassShard(shard.num_classes, r, shard.world_size).size * per_class for r in range(shard.world_size)]
    padded = part.new_zeros(max(sizes), *part.shape[1:])
    padded[: len(part)] = part
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([p[:size] for p, size in zip(parts, sizes, strict=True)])


def full_state(loss: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """The loss's and the optimizer's state dicts with a sharded head whole; every rank must call it."""
    loss_state, optimizer_state = loss.state_dict(), optimizer.state_dict()
    if not isinstance(loss, PartialFCLoss) or loss.shard.world_size == 1:
        return loss_state, optimizer_state
    states = dict(optimizer_state["state"])  # the entries are the live optimizer's: replaced, never changed
    for name, key in _head_entries(loss, optimizer):
        rows, per_class = len(loss_state[name]), _rows_per_class(loss)
        loss_state[name] = _gather_rows(loss_state[name], loss.shard, per_class)
        entry = states.get(key, {})
        states[key] = {
            k: _gather_rows(v, loss.shard, per_class) if _rows_like(v, rows) else v for k, v in entry.items()
        }
    return loss_state, {**optimizer_state, "state": states}


def load_state(loss: nn.Module, optimizer: torch.optim.Optimizer, loss_state: dict, optimizer_state: dict) -> None:
    """Load whole-head state into this rank's shard (all of it on one process)."""
    if isinstance(loss, PartialFCLoss):
        shard = loss.shard
        loss_state = dict(loss_state)
        states = dict(optimizer_state["state"])
        for name, key in _head_entries(loss, optimizer):
            rows, per_class = len(loss_state[name]), _rows_per_class(loss)
            cut = slice(shard.start * per_class, (shard.start + shard.size) * per_class)
            loss_state[name] = loss_state[name][cut]
            if key in states:
                states[key] = {k: v[cut] if _rows_like(v, rows) else v for k, v in states[key].items()}
        optimizer_state = {**optimizer_state, "state": states}
    loss.load_state_dict(loss_state)
    load_optimizer_state(optimizer, optimizer_state)
