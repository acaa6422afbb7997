"""Each loss against a naive reference written as plain loops (pytorch-metric-learning's approach)."""

import math
import sys

import pytest
import torch
import torch.nn.functional as F

import facecli.losses  # noqa: F401  (registration)
from facecli.errors import FaceCliError
from facecli.losses.options import build_loss, check_loss_options
from facecli.registry import HEADS, LOSSES


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(12, 8, generator=g), torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])


# every registered loss and the test that checks it against a reference written out by hand
REFERENCES = {
    "softmax": "test_softmax_is_cross_entropy_of_w_e_plus_b",
    "arcface": "test_margin_losses_match_the_formula",
    "cosface": "test_margin_losses_match_the_formula",
    "combined": "test_margin_losses_match_the_formula",
    "triplet": "test_triplet_miners_against_loops",
    "contrastive": "test_contrastive_and_siamese_use_balanced_pairs",
    "siamese": "test_contrastive_and_siamese_use_balanced_pairs",
    "adaface": "test_heads.py::test_adaface_matches_its_formula_over_steps",
    "subcenter_arcface": "test_heads.py::test_subcenter_arcface_matches_its_formula",
    "magface": "test_heads.py::test_magface_matches_its_formula",
    "curricularface": "test_heads.py::test_curricularface_matches_its_formula_over_steps",
}


def test_every_registered_loss_has_a_reference_test():
    assert set(LOSSES.names()) == set(REFERENCES)
    from tests.losses import test_heads

    for test in REFERENCES.values():
        module, _, name = test.rpartition("::")
        assert hasattr(test_heads if module == "test_heads.py" else sys.modules[__name__], name), test


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_registered_loss_trains(batch, name):
    emb, labels = batch
    loss_fn = LOSSES.get(name)(embedding_size=8, num_classes=4)
    x = emb.clone().requires_grad_(True)
    loss = loss_fn(x, labels)
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss) and x.grad.abs().sum() > 0
    assert {"linear", "margin"} <= set(HEADS.names())


def test_softmax_is_cross_entropy_of_w_e_plus_b(batch):
    emb, labels = batch
    loss_fn = LOSSES.get("softmax")(8, 4)
    weight, bias = loss_fn.head.fc.weight.detach(), loss_fn.head.fc.bias.detach()
    terms = []
    for e, y in zip(emb, labels, strict=True):
        logits = [float(weight[c] @ e + bias[c]) for c in range(4)]
        terms.append(math.log(sum(math.exp(z) for z in logits)) - logits[y])
    assert loss_fn(emb, labels).item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)


def _naive_margin_logits(emb, weight, labels, s, m1, m2, m3):
    logits = torch.zeros(len(emb), len(weight))
    for i in range(len(emb)):
        for c in range(len(weight)):
            cos = float(F.cosine_similarity(emb[i], weight[c], dim=0))
            if c == labels[i]:
                theta = math.acos(max(-1.0, min(1.0, cos)))
                cos = math.cos(m1 * theta + m2) - m3
            logits[i, c] = s * cos
    return logits


def _margins(name: str, options: dict) -> tuple[float, float, float]:
    """(m1, m2, m3) of cos(m1 * theta + m2) - m3 for each margin loss's own options."""
    if name == "arcface":
        return 1.0, options["margin"], 0.0
    if name == "cosface":
        return 1.0, 0.0, options["margin"]
    return tuple(options["margins"])


@pytest.mark.parametrize(
    ("name", "given"),
    [
        ("arcface", {}),
        ("cosface", {}),
        ("combined", {}),
        ("arcface", {"scale": 32.0, "margin": 0.3}),
        ("combined", {"scale": 16.0, "margins": (0.9, 0.4, 0.15)}),  # all three margins at once
    ],
)
def test_margin_losses_match_the_formula(batch, name, given):
    emb, labels = batch
    options = check_loss_options(name, given)
    loss_fn = build_loss(name, 8, 4, options)
    with torch.no_grad():
        loss_fn.head.weight.copy_(emb[[0, 3, 6, 9]] + 0.3)  # true-class angles well inside (0, pi - m)
    weight = loss_fn.head.weight.detach()
    logits = _naive_margin_logits(emb, weight, labels, options["scale"], *_margins(name, options))
    assert loss_fn(emb, labels).item() == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-4)


def test_triplet_miners_against_loops(batch):
    emb, labels = batch
    x = F.normalize(emb)
    d = torch.cdist(x, x)
    n = len(labels)
    same = [(a, p) for a in range(n) for p in range(n) if a != p and labels[a] == labels[p]]
    all_terms = [max(0.0, float(d[a, p] - d[a, k] + 0.2)) for a, p in same for k in range(n) if labels[k] != labels[a]]
    violating = [t for t in all_terms if t > 0]
    got = LOSSES.get("triplet")(8, 4, mining="all")(emb, labels).item()
    assert got == pytest.approx(sum(violating) / len(violating), rel=1e-5)
    hard = []
    for a in range(n):
        dp = max(float(d[a, p]) for p in range(n) if p != a and labels[p] == labels[a])
        dn = min(float(d[a, k]) for k in range(n) if labels[k] != labels[a])
        hard.append(max(0.0, dp - dn + 0.2))
    got = LOSSES.get("triplet")(8, 4, mining="batch_hard")(emb, labels).item()
    assert got == pytest.approx(sum(hard) / len(hard), rel=1e-5)
    semi = [
        float(d[a, p] - d[a, k] + 0.2)
        for a, p in same
        for k in range(n)
        if labels[k] != labels[a] and d[a, p] < d[a, k] < d[a, p] + 0.2
    ]
    got = LOSSES.get("triplet")(8, 4, mining="semi_hard")(emb, labels).item()
    assert got == pytest.approx(sum(semi) / len(semi) if semi else 0.0, rel=1e-5)
    with pytest.raises(FaceCliError, match="did you mean 'semi_hard'"):
        LOSSES.get("triplet")(8, 4, mining="semihard")


def test_contrastive_and_siamese_use_balanced_pairs(batch):
    from facecli.losses.pairs import balanced_pairs

    emb, labels = batch
    i, j, same = balanced_pairs(labels)
    assert same.sum() == len(same) / 2 == 12  # 4 identities x 3 genuine pairs, and as many impostors
    x = F.normalize(emb)
    terms = []
    for a, b, s in zip(i.tolist(), j.tolist(), same.tolist(), strict=True):
        dist = float((x[a] - x[b]).norm())
        terms.append(dist**2 if s else max(0.0, 1.0 - dist) ** 2)
    assert LOSSES.get("contrastive")(8, 4)(emb, labels).item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)
    siamese = LOSSES.get("siamese")(8, 4)
    w, bias = siamese.fc.weight.detach()[0].tolist(), float(siamese.fc.bias.detach())
    terms = []
    for a, b, s in zip(i.tolist(), j.tolist(), same.tolist(), strict=True):  # |f1 - f2| -> FC -> sigmoid -> BCE
        logit = sum(wk * abs(xa - xb) for wk, xa, xb in zip(w, emb[a].tolist(), emb[b].tolist(), strict=True)) + bias
        p = 1 / (1 + math.exp(-logit))
        terms.append(-math.log(p) if s else -math.log(1 - p))
    assert siamese(emb, labels).item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)
