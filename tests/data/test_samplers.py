"""P x K and shuffled batch samplers: any number of identities gives batches, adapted with a note."""

import numpy as np
import pytest

from facecli.data.batch_plan import plan_batches
from facecli.data.samplers import TrainBatchSampler


def _labels(counts):
    return np.concatenate([np.full(n, c) for c, n in enumerate(counts)])


def _sampler(labels, epochs, batch, kind, k=4, seed=0, rank=0, world=1, file_order=None):
    return TrainBatchSampler(plan_batches(labels, batch, kind, k, rank, world, file_order), epochs, seed)


@pytest.mark.parametrize(("counts", "batch", "k", "expect"), [
    ([10] * 10, 64, 4, (10, 6)),  # 16 identities asked, 10 exist: 10 x 6
    ([3, 3], 64, 4, (2, 3)),  # two identities, six images: the batch shrinks to the data, 2 x 3
    ([50, 50], 64, 4, (2, 32)),
    ([4] * 20, 64, 4, (16, 4)),  # enough identities: unchanged
])  # fmt: skip
def test_pk_batches_adapt_to_the_identities(counts, batch, k, expect):
    sampler = _sampler(_labels(counts), 1, batch, "pk", k)
    p, per_identity = expect
    assert (sampler.batch_size // sampler.k, sampler.k) == (p, per_identity)
    assert bool(sampler.plan.notes) == (expect != (batch // k, k))
    for chosen in sampler:
        labels = _labels(counts)[[i for i, _ in chosen]]
        assert len(chosen) == p * per_identity and len(set(labels.tolist())) == p
        assert all((labels == c).sum() == per_identity for c in set(labels.tolist()))


def test_one_image_identities_are_left_out_of_pk_batches_but_not_shuffled_ones():
    labels = _labels([1, 1, 1, 6, 6, 6, 6])
    pk = _sampler(labels, 1, 8, "pk", 2)
    assert "3 one-image identities" in " ".join(pk.plan.notes)
    seen = {int(labels[i]) for batch in pk for i, _ in batch}
    assert seen <= {3, 4, 5, 6}
    shuffled = _sampler(labels, 1, 8, "random")
    assert {int(labels[i]) for batch in shuffled for i, _ in batch} >= {0, 1, 2} or len(shuffled) * 8 < len(labels)


def test_one_iteration_runs_every_epoch_and_a_resumed_one_continues_where_it_stopped():
    labels = _labels([5] * 8)
    whole = _sampler(labels, 3, 8, "pk", 2, seed=4)
    batches = list(whole)
    assert len(batches) == 3 * len(whole)
    resumed = _sampler(labels, 3, 8, "pk", 2, seed=4)
    resumed.set_epoch(1, 2)
    assert list(resumed) == batches[len(whole) + 2 :]


def _split(labels, world, kind, batch=8, k=2, epochs=2, seed=3):
    file_order = np.arange(len(labels))[::-1].copy()  # records lie in the file in reverse index order
    return [
        _sampler(labels, epochs, batch, kind, k, seed, rank, world, file_order) for rank in range(world)
    ], file_order


def test_packed_data_split_by_rank_reads_each_record_once_per_epoch_from_its_own_part():
    from facecli.data.batch_plan import BLOCK
    from facecli.data.samplers import WINDOW

    labels = _labels([7] * 600)  # 4200 records: 2100 per rank, over 4 blocks of 512 and a part block
    samplers, file_order = _split(labels, 2, "random", batch=50)
    assert len(samplers[0]) == len(samplers[1]) == 2100 // 50
    for rank, sampler in enumerate(samplers):
        mine = set(file_order[rank * 2100 : (rank + 1) * 2100].tolist())
        batches = list(sampler)
        first = [i for batch in batches[: len(sampler)] for i, _ in batch]
        assert set(first) <= mine and len(first) == len(set(first))  # its own part, each record at most once
        assert len(first) == 2100 - 2100 % 50
        positions = np.array([list(file_order).index(i) for i in first])
        window = BLOCK * WINDOW  # every window of reads stays inside WINDOW blocks of the file
        assert all(np.ptp(positions[w : w + window]) < window for w in range(0, len(positions), window))
        second = [i for batch in batches[len(sampler) :] for i, _ in batch]
        assert second != first and set(second) <= mine  # a new order each epoch


def test_split_pk_batches_agree_on_the_batch_and_resume_exactly():
    labels = _labels([2] * 5 + [9] * 3)  # rank 0 holds the three big identities (reversed file), rank 1 the rest
    samplers, file_order = _split(labels, 2, "pk", batch=8, k=2)
    assert len({(s.batch_size, s.k, len(s)) for s in samplers}) == 1  # the ranks agree, or DDP would hang
    for rank, sampler in enumerate(samplers):
        mine = set(file_order[rank * 18 : (rank + 1) * 18].tolist())
        batches = list(sampler)
        assert all(i in mine for batch in batches for i, _ in batch)
        resumed, _ = _split(labels, 2, "pk", batch=8, k=2)
        resumed[rank].set_epoch(1, 1)
        assert list(resumed[rank]) == batches[len(sampler) + 1 :]


def test_one_process_or_unpacked_data_is_not_split():
    labels = _labels([5] * 8)
    assert plan_batches(labels, 8, "random", file_order=np.arange(40)).share is None
    assert plan_batches(labels, 8, "random", rank=1, world_size=2).share is None


def test_the_sampler_draws_the_plan_it_is_given():
    labels = _labels([6] * 4)
    plan = plan_batches(labels, 64, "pk", 4)  # 24 images: the plan shrinks the batch; the sampler keeps it
    assert plan.batch_size == 24 and plan.notes
    sampler = TrainBatchSampler(plan, epochs=1)
    assert sampler.batch_size == plan.batch_size and all(len(batch) == 24 for batch in sampler)
