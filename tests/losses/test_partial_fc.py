"""Partial FC: sample rate 1 on one process is the full head exactly; sampling keeps every positive; the
class centres sharded over two gloo processes give the full head's loss and gradients."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from typer.testing import CliRunner

from facecli.cli import app
from facecli.errors import FaceCliError
from facecli.losses.margin import arcface, softmax
from facecli.losses.partial_fc import ClassShard, PartialFCLoss
from facecli.models.heads import LinearHead, MarginHead
from tests.losses.gloo import run_two_ranks

runner = CliRunner()


def _batch(classes=50, size=12, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(size, dim, generator=g), torch.randint(0, classes, (size,), generator=g)


@pytest.mark.parametrize("head", ["margin", "linear"])
def test_sample_rate_one_on_one_process_is_the_full_head_exactly(head):
    make = (lambda c: MarginHead(8, c, 64.0, m2=0.5)) if head == "margin" else (lambda c: LinearHead(8, c))
    torch.manual_seed(1)
    full = make(50)
    partial = PartialFCLoss(make(50), ClassShard(50), 1.0)
    partial.head.load_state_dict(full.state_dict())
    embeddings, labels = _batch()
    a, b = embeddings.clone().requires_grad_(), embeddings.clone().requires_grad_()
    expected = F.cross_entropy(full(a, labels), labels)
    got = partial(b, labels)
    expected.backward()
    got.backward()
    assert torch.equal(expected, got) and torch.equal(a.grad, b.grad)
    for (_, p), (_, q) in zip(full.named_parameters(), partial.head.named_parameters(), strict=True):
        assert torch.equal(p.grad, q.grad)


def test_sampling_keeps_every_positive_and_scores_a_fraction_of_the_centres():
    torch.manual_seed(0)
    loss = arcface(8, 1000, sample_rate=0.1)
    assert isinstance(loss, PartialFCLoss)
    embeddings, labels = _batch(classes=1000, size=64)
    local = labels.clone()
    rows, mapped = loss._sample(local, torch.ones_like(local, dtype=torch.bool))
    assert len(rows) == 100 and set(labels.tolist()) <= set(rows.tolist())
    assert torch.equal(rows[mapped], labels)  # each label points at its own centre among the sampled
    full = loss.head.logits(embeddings, labels)  # every centre, the margin on each label
    sampled = loss.head.logits(embeddings, mapped, rows)
    assert torch.allclose(sampled, full[:, rows], atol=1e-5)
    loss(embeddings.requires_grad_(), labels).backward()
    touched = loss.head.weight.grad.abs().sum(1) > 0
    assert int(touched.sum()) <= 100 and touched[labels].all()  # only the scored centres learn


@pytest.mark.parametrize("rate", [0.0, 1.5, -0.1])
def test_a_sample_rate_outside_zero_to_one_is_refused(rate, tmp_path):
    with pytest.raises(FaceCliError, match=r"--sample-rate must be a number in \(0, 1\]"):
        softmax(8, 10, sample_rate=rate)
    result = runner.invoke(
        app, ["train", "--data", str(tmp_path), "--loss", "arcface", "--sample-rate", str(rate), "--run-dir",
              str(tmp_path / "run")]
    )  # fmt: skip
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and f"--sample-rate must be a number in (0, 1], got {rate}" in said


def test_the_shards_cover_every_class_once():
    for classes, world in ((10, 3), (7, 2), (100, 4), (3, 3)):
        shards = [ClassShard(classes, r, world) for r in range(world)]
        covered = [c for s in shards for c in range(s.start, s.start + s.size)]
        assert covered == list(range(classes))


def _sharded_rank(rank, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)
    full = MarginHead(8, 11, 64.0, m2=0.5)
    shard = ClassShard(11, rank, 2)
    head = MarginHead(8, shard.size, 64.0, m2=0.5)
    with torch.no_grad():
        head.weight.copy_(full.weight[shard.start : shard.start + shard.size])
    embeddings, labels = _batch(classes=11, size=12)
    mine = slice(rank * 6, rank * 6 + 6)  # each rank holds half the global batch
    part = embeddings[mine].clone().requires_grad_()
    loss = PartialFCLoss(head, shard, 1.0)(part, labels[mine])
    loss.backward()
    torch.save((loss.item(), part.grad, head.weight.grad), f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.slow
def test_centres_sharded_over_two_processes_give_the_full_heads_loss_and_gradients(tmp_path):
    assert run_two_ranks("tests.losses.test_partial_fc:_sharded_rank", tmp_path) == [0, 0]
    torch.manual_seed(0)
    full = MarginHead(8, 11, 64.0, m2=0.5)
    embeddings, labels = _batch(classes=11, size=12)
    embeddings.requires_grad_()
    expected = F.cross_entropy(full(embeddings, labels), labels)
    expected.backward()
    for rank in range(2):
        loss, grad, weight_grad = torch.load(tmp_path / f"rank{rank}.pt")
        shard = ClassShard(11, rank, 2)
        assert loss == pytest.approx(expected.item(), rel=1e-5)
        # x 2: DDP then averages the trunk's gradients over the 2 ranks, which gives the full head's
        assert torch.allclose(grad, 2 * embeddings.grad[rank * 6 : rank * 6 + 6], atol=1e-5)
        assert torch.allclose(weight_grad, full.weight.grad[shard.start : shard.start + shard.size], atol=1e-6)
