import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.pipeline import make_pipeline

from facecli.data.images import read_image
from facecli.data.synth import synth
from facecli.errors import FaceCliError


def test_same_seed_same_images(tmp_path):
    synth(tmp_path / "a", identities=2, images=2, size=32, seed=5)
    synth(tmp_path / "b", identities=2, images=2, size=32, seed=5)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.jpg"))
    assert [str(f) for f in files][0] == "person_0000/person_0000_0001.jpg" and len(files) == 4
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_refuses_non_empty_folder_without_force(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(FaceCliError, match="--force"):
        synth(tmp_path / "x", identities=1, images=1)


def _load(root):
    names = sorted(p.name for p in root.iterdir())
    images, labels = [], []
    for label, name in enumerate(names):
        for f in sorted((root / name).iterdir()):
            images.append(read_image(f))
            labels.append(label)
    return np.stack(images), np.array(labels)


def _nearest_neighbour_accuracy(features, labels):
    """Leave-one-out 1-NN identification accuracy."""
    d = torch.cdist(features, features)
    d.fill_diagonal_(float("inf"))
    return (labels[d.argmin(1).numpy()] == labels).mean()


def test_mean_colour_does_not_identify_people_but_a_trained_model_does(tmp_path):
    """1-NN on mean colour stays near chance; Fisherfaces (PCA + LDA) trained on other images does not."""
    synth(tmp_path / "d", identities=8, images=24, size=32, seed=0)
    images, labels = _load(tmp_path / "d")
    train = np.arange(len(labels)) % 24 < 16  # 16 images per identity to train, 8 to test
    test = ~train
    mean_colour = torch.from_numpy(images.reshape(len(images), -1, 3).mean(1)).float()
    grey = images.mean(3).reshape(len(images), -1)
    grey = (grey - grey.mean(1, keepdims=True)) / grey.std(1, keepdims=True)
    fisher = make_pipeline(PCA(40, random_state=0), LinearDiscriminantAnalysis()).fit(grey[train], labels[train])
    embedded = torch.from_numpy(fisher.transform(grey)).float()

    baseline = _nearest_neighbour_accuracy(mean_colour[test], labels[test])
    trained = _nearest_neighbour_accuracy(embedded[test], labels[test])
    assert baseline < 0.3  # chance is 0.125
    assert trained > 0.7
    assert trained > baseline + 0.4
