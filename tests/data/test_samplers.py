"""P x K and shuffled batch samplers: any number of identities gives batches, adapted with a note."""

import numpy as np
import pytest

from facecli.data.samplers import TrainBatchSampler


def _labels(counts):
    return np.concatenate([np.full(n, c) for c, n in enumerate(counts)])


@pytest.mark.parametrize(("counts", "batch", "k", "expect"), [
    ([10] * 10, 64, 4, (10, 6)),  # 16 identities asked, 10 exist: 10 x 6
    ([3, 3], 64, 4, (2, 3)),  # two identities, six images: the batch shrinks to the data, 2 x 3
    ([50, 50], 64, 4, (2, 32)),
    ([4] * 20, 64, 4, (16, 4)),  # enough identities: unchanged
])  # fmt: skip
def test_pk_batches_adapt_to_the_identities(counts, batch, k, expect):
    sampler = TrainBatchSampler(_labels(counts), 1, batch, "pk", k)
    p, per_identity = expect
    assert (sampler.batch_size // sampler.k, sampler.k) == (p, per_identity)
    assert bool(sampler.notes) == (expect != (batch // k, k))
    for chosen in sampler:
        labels = _labels(counts)[[i for i, _ in chosen]]
        assert len(chosen) == p * per_identity and len(set(labels.tolist())) == p
        assert all((labels == c).sum() == per_identity for c in set(labels.tolist()))


def test_one_image_identities_are_left_out_of_pk_batches_but_not_shuffled_ones():
    labels = _labels([1, 1, 1, 6, 6, 6, 6])
    pk = TrainBatchSampler(labels, 1, 8, "pk", 2)
    assert "3 one-image identities" in " ".join(pk.notes)
    seen = {int(labels[i]) for batch in pk for i, _ in batch}
    assert seen <= {3, 4, 5, 6}
    shuffled = TrainBatchSampler(labels, 1, 8, "random")
    assert {int(labels[i]) for batch in shuffled for i, _ in batch} >= {0, 1, 2} or len(shuffled) * 8 < len(labels)


def test_one_iteration_runs_every_epoch_and_a_resumed_one_continues_where_it_stopped():
    labels = _labels([5] * 8)
    whole = TrainBatchSampler(labels, 3, 8, "pk", 2, seed=4)
    batches = list(whole)
    assert len(batches) == 3 * len(whole)
    resumed = TrainBatchSampler(labels, 3, 8, "pk", 2, seed=4)
    resumed.set_epoch(1, 2)
    assert list(resumed) == batches[len(whole) + 2 :]
