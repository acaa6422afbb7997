"""Training images: seeded augmentation, decoded images kept in memory up to a budget, damaged images replaced."""

import cv2
import numpy as np
import pytest
import torch

from facecli.data import training_set
from facecli.data.synth import synth
from facecli.data.training_set import DecodedCache, TrainImages, decoded_cache_budget, read_training_set
from facecli.data.transforms import Preprocessing

PREPROCESSING = Preprocessing((24, 24), (0.5,) * 3, (0.5,) * 3)


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    synth(root, identities=3, images=4, size=32, seed=0)
    return read_training_set(root)


@pytest.mark.parametrize("aug", ["none", "light", "strong"])
def test_kept_images_give_the_same_pixels_as_reading_them_again(faces, aug):
    uncached = TrainImages(faces, PREPROCESSING, aug)
    cached = TrainImages(faces, PREPROCESSING, aug, cache_bytes=1 << 20)
    for epoch in range(3):
        for index in range(len(faces.paths)):
            item = (index, 100 * epoch + index)
            expected, label, failures, kept = uncached[item]
            assert kept and not failures and label == faces.labels[index]
            assert expected.dtype == torch.uint8 and expected.shape == (3, 24, 24)
            assert (cached[item][0] == expected).all()
    assert len(cached.cache.images) == len(faces.paths)
    assert uncached.cache.images == {}
    # a kept image is never changed by the augmentation that reads it
    stored = cached.cache.images[0][0]
    assert not stored.flags.writeable
    assert (stored == faces.read(0)).all()


def test_augmentation_follows_the_seed(faces):
    images = TrainImages(faces, PREPROCESSING, "strong")
    first, again, other = images[(0, 7)][0], images[(0, 7)][0], images[(0, 8)][0]
    assert (first == again).all()
    assert not (first == other).all()


def test_the_budget_bounds_what_is_kept():
    reads = []

    def read(index):
        reads.append(index)
        return np.full((10, 10, 3), index, np.uint8)  # 300 bytes each

    cache = DecodedCache(budget=700)
    for _ in range(2):
        for index in range(5):
            assert (cache.get(index, read, lambda index: (1, 300)) == index).all()
    assert sorted(cache.images) == [0, 1] and cache.used == 600
    assert reads == [0, 1, 2, 3, 4, 2, 3, 4]  # the first two were read once, the rest each time


def test_each_loader_worker_keeps_its_share(faces, monkeypatch):
    class Worker:
        num_workers = 4

    monkeypatch.setattr(training_set, "get_worker_info", lambda: Worker())
    images = TrainImages(faces, PREPROCESSING, "light", cache_bytes=4000)
    images[(0, 0)]
    assert images.cache.budget == 1000


def test_the_budget_is_shared_by_a_run_s_processes(monkeypatch):
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    alone = decoded_cache_budget()
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert decoded_cache_budget() == alone // 4
    assert 0 < alone <= 4 << 30


def test_a_kept_image_whose_file_changes_or_goes_is_read_again(tmp_path):
    synth(tmp_path, identities=2, images=3, size=32, seed=1)
    data = read_training_set(tmp_path)
    images = TrainImages(data, PREPROCESSING, "none", cache_bytes=1 << 20)
    assert not images[(0, 5)][2] and not images[(1, 5)][2] and not images[(2, 5)][2]
    data.paths[0].write_bytes(b"not an image")
    data.paths[1].unlink()
    flipped = data.read(2)[:, ::-1].copy()
    cv2.imwrite(str(data.paths[2]), cv2.cvtColor(flipped, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 100])
    for _ in range(2):  # damaged images are not kept: each time they fail and are replaced
        pixels, label, failures, kept = images[(0, 5)]
        assert kept and label == data.labels[0]
        assert str(data.paths[0]) in failures and "not a readable image" in failures
        assert "cannot read" in images[(1, 5)][2]
    assert 0 not in images.cache.images and 1 not in images.cache.images
    assert (images[(2, 5)][0] == PREPROCESSING.pixels(data.read(2))).all()
    assert images.cache.used == sum(image.nbytes for image, _ in images.cache.images.values())
