"""AdaFace, Sub-center ArcFace, MagFace and CurricularFace against their papers' formulas written out as plain
loops in float64: loss, gradients with respect to the raw embeddings and the class centres, and the heads'
state over several steps, with the authors' default hyper-parameters and rows whose angle plus margin passes pi."""

import math
import os
from functools import partial

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

import facecli.losses  # noqa: F401  (registration)
from facecli.errors import FaceCliError
from facecli.losses.options import build_loss, check_loss_options, loss_defaults
from facecli.losses.partial_fc import ClassShard, PartialFCLoss
from facecli.losses.ranks import RankSplit
from facecli.registry import HEADS, LOSSES
from tests.losses.gloo import run_two_ranks

CLASSES, DIM = 5, 8


def _unit(v):
    return v / torch.sqrt((v * v).sum())


def _cos(e, w):
    return (_unit(e) * _unit(w)).sum()


def _cross_entropy(logits, label):
    return torch.logsumexp(torch.stack(logits), 0) - logits[label]


def _batch(seed, size=10, norms=(5.0, 40.0)):
    """Raw features of varied norms, labels, and the class centres (the same in every batch); row 0 points
    away from its own centre (its angle plus any margin passes pi), row 1 nearly onto it."""
    centres = torch.randn(CLASSES, DIM, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, CLASSES, (size,), generator=g)
    emb = torch.randn(size, DIM, generator=g, dtype=torch.float64)
    emb[0] = -centres[labels[0]] + 0.01 * emb[0]
    emb[1] = centres[labels[1]] + 0.3 * emb[1]
    scale = torch.empty(size, dtype=torch.float64).uniform_(*norms, generator=g)
    scale[0] = norms[0]  # the lowest norm: AdaFace's largest angular margin, on the row already near pi
    return emb / emb.norm(dim=1, keepdim=True) * scale[:, None], labels, centres


def _adaface_reference(emb, centres, labels, stats, m=0.4, h=0.333, s=64.0, t_alpha=0.01):
    eps = 1e-3
    norms = [min(max(float(e.detach().norm()), 0.001), 100.0) for e in emb]
    mean = sum(norms) / len(norms)
    std = math.sqrt(sum((x - mean) ** 2 for x in norms) / (len(norms) - 1))
    stats = (mean * t_alpha + (1 - t_alpha) * stats[0], std * t_alpha + (1 - t_alpha) * stats[1])
    terms = []
    for e, y, norm in zip(emb, labels.tolist(), norms, strict=True):
        z = min(max((norm - stats[0]) / (stats[1] + eps) * h, -1.0), 1.0)
        logits = []
        for c in range(len(centres)):
            cos = _cos(e, centres[c]).clamp(-1 + eps, 1 - eps)
            if c == y:
                angle = (torch.acos(cos) - m * z).clamp(eps, math.pi - eps)
                cos = torch.cos(angle) - (m + m * z)
            logits.append(s * cos)
        terms.append(_cross_entropy(logits, y))
    return sum(terms) / len(terms), stats


def _arc(cos, m):
    """cos(theta + m), falling back to cos - m sin(pi - m) past theta = pi - m."""
    if cos > math.cos(math.pi - m):
        return cos * math.cos(m) - torch.sqrt(1 - cos * cos) * math.sin(m)
    return cos - math.sin(math.pi - m) * m


def _subcenter_reference(emb, centres, labels, k=3, m=0.5, s=64.0):
    terms = []
    for e, y in zip(emb, labels.tolist(), strict=True):
        logits = []
        for c in range(len(centres) // k):
            cos = torch.stack([_cos(e, centres[c * k + j]) for j in range(k)]).max()
            logits.append(s * (_arc(cos, m) if c == y else cos))
        terms.append(_cross_entropy(logits, y))
    return sum(terms) / len(terms)


def _magface_reference(emb, centres, labels, easy_margin=True, l_a=10.0, u_a=110.0, l_m=0.45, u_m=0.8, lam=35.0):
    terms, penalties = [], []
    for e, y in zip(emb, labels.tolist(), strict=True):
        a = torch.sqrt((e * e).sum()).clamp(l_a, u_a)
        margin = (u_m - l_m) / (u_a - l_a) * (a - l_a) + l_m
        logits = []
        for c in range(len(centres)):
            cos = _cos(e, centres[c])
            if c == y:
                if easy_margin and cos <= 0:
                    pass
                elif easy_margin or cos > torch.cos(math.pi - margin):
                    cos = torch.cos(torch.acos(cos) + margin)
                else:
                    cos = cos - torch.sin(math.pi - margin) * margin
            logits.append(64.0 * cos)
        terms.append(_cross_entropy(logits, y))
        penalties.append(a / u_a**2 + 1 / a)
    return sum(terms) / len(terms) + lam * sum(penalties) / len(penalties)


def _curricular_reference(emb, centres, labels, t, m=0.5, s=64.0):
    targets = [_cos(e, centres[y]) for e, y in zip(emb, labels.tolist(), strict=True)]
    t = 0.01 * float(sum(targets).detach()) / len(targets) + 0.99 * t
    terms = []
    for e, y, target in zip(emb, labels.tolist(), targets, strict=True):
        margined = float(torch.cos(torch.acos(target.detach()) + m))  # which negatives are hard: no gradient
        logits = []
        for c in range(len(centres)):
            cos = _cos(e, centres[c])
            if c == y:
                logits.append(s * _arc(cos, m))
            else:
                logits.append(s * (cos * (t + cos) if cos > margined else cos))
        terms.append(_cross_entropy(logits, y))
    return sum(terms) / len(terms), t


def _head_of(name, options, centres):
    loss = build_loss(name, DIM, CLASSES, check_loss_options(name, options))
    with torch.no_grad():
        loss.head.weight.copy_(centres)
    return loss


def _compare(loss_fn, emb, labels, centres, reference):
    """Loss and gradients (embeddings, centres) of facecli's head against `reference(x, w)` -> (loss, state),
    rel 1e-4; returns the reference's state after the step."""
    x = emb.float().clone().requires_grad_()
    loss_fn.head.weight.grad = None
    got = loss_fn(x, labels)
    got.backward()
    ref_x = emb.clone().requires_grad_()
    ref_w = centres.clone().requires_grad_()
    expected, state = reference(ref_x, ref_w)
    expected.backward()
    assert got.item() == pytest.approx(expected.item(), rel=1e-4)
    torch.testing.assert_close(x.grad.double(), ref_x.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(loss_fn.head.weight.grad.double(), ref_w.grad, rtol=1e-4, atol=1e-6)
    return state


@pytest.mark.parametrize("options", [{}, {"h": 2.0, "t_alpha": 1.0, "margin": 0.5}], ids=["authors", "clipped"])
def test_adaface_matches_its_formula_over_steps(options):
    given = {"m": options.get("margin", 0.4), "h": options.get("h", 0.333), "t_alpha": options.get("t_alpha", 0.01)}
    stats = (20.0, 100.0)
    _, _, centres = _batch(0)
    loss_fn = _head_of("adaface", options, centres.float())
    for step in range(3):
        emb, labels, _ = _batch(step, norms=(2.0, 60.0))
        stats = _compare(
            loss_fn, emb, labels, centres, partial(_adaface_reference, labels=labels, stats=stats, **given)
        )
        assert loss_fn.head.batch_mean.item() == pytest.approx(stats[0], rel=1e-5)
        assert loss_fn.head.batch_std.item() == pytest.approx(stats[1], rel=1e-5)


def test_subcenter_arcface_matches_its_formula():
    g = torch.Generator().manual_seed(3)
    emb, labels, _ = _batch(1)
    centres = torch.randn(CLASSES * 3, DIM, generator=g, dtype=torch.float64)
    centres[labels[0] * 3 : labels[0] * 3 + 3] = emb[0] * -1 + 0.05 * centres[:3]  # every sub-centre opposite
    loss_fn = _head_of("subcenter_arcface", {}, centres.float())
    assert loss_fn.head.weight.shape == (CLASSES * 3, DIM)
    _compare(loss_fn, emb, labels, centres, lambda x, w: (_subcenter_reference(x, w, labels), None))


@pytest.mark.parametrize("easy_margin", [True, False])
def test_magface_matches_its_formula(easy_margin):
    emb, labels, centres = _batch(2, norms=(4.0, 130.0))  # some magnitudes outside [l_a, u_a]
    loss_fn = _head_of("magface", {"easy_margin": easy_margin}, centres.float())
    _compare(loss_fn, emb, labels, centres, lambda x, w: (_magface_reference(x, w, labels, easy_margin), None))


def test_curricularface_matches_its_formula_over_steps():
    t = 0.0
    _, _, centres = _batch(0)
    loss_fn = _head_of("curricularface", {}, centres.float())
    for step in range(3):
        emb, labels, _ = _batch(10 + step)
        t = _compare(loss_fn, emb, labels, centres, partial(_curricular_reference, labels=labels, t=t))
        assert loss_fn.head.t.item() == pytest.approx(t, rel=1e-5, abs=1e-7)


def test_the_heads_state_lives_in_buffers_named_as_their_authors_name_it():
    assert set(dict(LOSSES.get("adaface")(DIM, CLASSES).named_buffers())) == {"head.batch_mean", "head.batch_std"}
    assert set(dict(LOSSES.get("curricularface")(DIM, CLASSES).named_buffers())) == {"head.t"}


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("subcenter_arcface", {"sub_centers": 0}, r"--sub-centers must be an integer in \[1, 64\], got 0"),
        ("magface", {"l_a": 50.0, "u_a": 40.0}, "MagFace needs --u-a above --l-a, got --l-a 50 and --u-a 40"),
        ("magface", {"lambda_g": -1.0}, r"--lambda-g must be a number >= 0, got -1.0"),
        ("adaface", {"t_alpha": 0.0}, r"--t-alpha must be a number in \(0, 1\], got 0.0"),
        ("adaface", {"h": float("nan")}, r"--h must be a number > 0, got nan"),
        ("adaface", {"margin": -5.0}, r"--margin must be a number in \[0, 3.14159\), got -5.0"),  # loss 0: a no-op
        ("subcenter_arcface", {"margin": 3.5}, r"--margin must be a number in \[0, 3.14159\), got 3.5"),
        ("curricularface", {"margin": float("inf")}, r"--margin must be a number in \[0, 3.14159\), got inf"),
        ("arcface", {"margin": 4.0}, r"--margin must be a number in \[0, 3.14159\), got 4.0"),
    ],
)
def test_out_of_range_hyper_parameters_are_refused_before_any_work(name, options, message):
    with pytest.raises(FaceCliError, match=message):
        check_loss_options(name, options)


SPLIT_HEADS = {"adaface": ("batch_mean", "batch_std"), "curricularface": ("t",), "subcenter_arcface": ()}


def _split_head(name, classes, ranks):
    """Head `name` with its loss's default options, split across ranks as `ranks` says."""
    options = {k: v for k, v in loss_defaults(name).items() if k != "sample_rate"}
    if name == "subcenter_arcface":
        return HEADS.get(name)(DIM, classes, **options)
    return HEADS.get(name)(DIM, classes, **options, ranks=ranks)


def _split_rank(rank, port, out):
    """Each head two ways over two gloo ranks: Partial FC (centres by class, the batch gathered) and a full
    head per rank on half the batch; saved for the test to compare with one process on the whole batch."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    emb, labels, _ = _batch(5, size=12)
    mine = slice(rank * 6, rank * 6 + 6)
    results = {}
    for name in SPLIT_HEADS:
        torch.manual_seed(0)
        full = _split_head(name, 11, RankSplit())
        shard = ClassShard(11, rank, 2)
        rows = getattr(full, "sub_centers", 1)
        head = _split_head(name, shard.size, RankSplit(classes=True))
        with torch.no_grad():
            head.weight.copy_(full.weight[shard.start * rows : (shard.start + shard.size) * rows])
        part = emb[mine].float().clone().requires_grad_()
        loss = PartialFCLoss(head, shard, 1.0)(part, labels[mine] % 11)
        loss.backward()
        replica = _split_head(name, 11, RankSplit(batch=True))
        replica.load_state_dict(full.state_dict())
        F.cross_entropy(replica(emb[mine].float(), labels[mine] % 11), labels[mine] % 11).backward()
        results[name] = (loss.item(), part.grad, head.weight.grad, dict(head.named_buffers()),
                         dict(replica.named_buffers()))  # fmt: skip
    torch.save(results, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.slow
def test_heads_split_over_two_processes_match_one_process_on_the_whole_batch(tmp_path):
    assert run_two_ranks("tests.losses.test_heads:_split_rank", tmp_path) == [0, 0]
    emb, labels, _ = _batch(5, size=12)
    for name, buffers in SPLIT_HEADS.items():
        torch.manual_seed(0)
        full = _split_head(name, 11, RankSplit())
        x = emb.float().clone().requires_grad_()
        expected = F.cross_entropy(full(x, labels % 11), labels % 11)
        expected.backward()
        rows = getattr(full, "sub_centers", 1)
        for rank in range(2):
            loss, grad, weight_grad, sharded, replica = torch.load(tmp_path / f"rank{rank}.pt")[name]
            shard = ClassShard(11, rank, 2)
            assert loss == pytest.approx(expected.item(), rel=1e-5), name
            assert torch.allclose(grad, 2 * x.grad[rank * 6 : rank * 6 + 6], atol=1e-5), name
            cut = slice(shard.start * rows, (shard.start + shard.size) * rows)
            assert torch.allclose(weight_grad, full.weight.grad[cut], atol=1e-5), name
            for buffer in buffers:  # the statistics of the whole batch, on every rank, both ways
                assert torch.allclose(sharded[buffer], getattr(full, buffer)), (name, buffer)
                assert torch.allclose(replica[buffer], getattr(full, buffer)), (name, buffer)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--sub-centers", "0"], "--sub-centers must be an integer in [1, 64], got 0"),  # the loss still to choose
        (["--loss", "magface", "--l-a", "50", "--u-a", "40"], "MagFace needs --u-a above --l-a"),
        (["--loss", "magface", "--lambda-g", "-1"], "--lambda-g must be a number >= 0, got -1.0"),
        (["--loss", "arcface", "--t-alpha", "0.5"], "--t-alpha applies to adaface; the loss is arcface"),
    ],
)
def test_train_refuses_bad_head_options_in_one_line_before_reading_data(tmp_path, flags, message):
    from typer.testing import CliRunner

    from facecli.cli import app

    missing = tmp_path / "no such data"  # never read: the options are refused first
    result = CliRunner().invoke(app, ["train", "--data", str(missing), "--run-dir", str(tmp_path / "run"), *flags])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and message in said and "Traceback" not in said
    assert said.count("error:") == 1 and not (tmp_path / "run").exists()
