"""Training images and their identity labels, from an image-folder dataset or a cls_train.txt file."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from facecli.data.augment import augment
from facecli.data.images import ImageError, decode, read_image
from facecli.data.recordio import RecordFile, open_record_set
from facecli.data.scan import scan_dataset
from facecli.data.training_lists import read_training_list
from facecli.data.transforms import Preprocessing
from facecli.data.workers import init_worker, worker_start
from facecli.errors import FaceCliError


@dataclass
class TrainingSet:
    """Image paths with integer labels 0..C-1 and the identity name of each label."""

    source: Path
    paths: list[Path]
    labels: np.ndarray
    classes: list[str]
    left_out: list[tuple[Path, str]] = field(default_factory=list)  # (image, reason) found unusable up front
    records: RecordFile | None = None  # a RecordIO set: images are records, `paths` name them `train.rec#key`
    offsets: list[int] | None = None

    def read(self, index: int) -> np.ndarray:
        """Image `index` decoded to uint8 RGB; ImageError for one that cannot be used (a damaged record too)."""
        if self.records is None:
            return read_image(self.paths[index])
        try:
            key = self.paths[index].name.rsplit("#", 1)[-1]
            return decode(self.records.image_record(self.offsets[index], key).image)
        except FaceCliError as exc:
            raise ImageError(str(exc).removeprefix(f"{self.records.path} ")) from None

    def stamp(self, index: int) -> tuple[int, int] | None:
        """(modification time, size) of image `index`'s file, None when it cannot be seen; a record's is fixed."""
        if self.records is not None:
            return 0, 0
        try:
            status = os.stat(self.paths[index])
        except OSError:
            return None
        return status.st_mtime_ns, status.st_size

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def under_two_labels(self) -> list[Path]:
        """Images listed under more than one identity (a hand-merged list's label noise); only a list can do
        that, so a folder or a .rec costs nothing."""
        if self.records is not None or self.source.is_dir() or len(set(self.paths)) == len(self.paths):
            return []
        labels_of: dict[Path, set[int]] = {}
        for path, label in zip(self.paths, self.labels.tolist(), strict=True):
            labels_of.setdefault(path, set()).add(label)
        return [path for path, labels in labels_of.items() if len(labels) > 1]


def _from_folder(root: Path) -> TrainingSet:
    scan = scan_dataset(root)
    names = [name for name in scan.identities if scan.images[name]]
    paths = [file for name in names for file in scan.images[name]]
    labels = np.array([label for label, name in enumerate(names) for _ in scan.images[name]], np.int64)
    return TrainingSet(root, paths, labels, names, scan.bad_images)


def _from_list(path: Path, root: Path | None, columns: list[str] | None) -> TrainingSet:
    listed = read_training_list(path, root, columns)
    # identities need not be contiguous numbers (a filtered cls_train.txt): map them to 0..C-1, sorted
    # numerically when they all are numbers, as the ports' class ids are
    names = sorted(set(listed.identities), key=lambda n: (0, int(n), n) if n.isdigit() else (1, 0, n))
    index = {name: n for n, name in enumerate(names)}
    return TrainingSet(path, listed.paths, np.array([index[n] for n in listed.identities], np.int64), names)


def _from_records(rec: Path) -> TrainingSet:
    records = open_record_set(rec)
    classes = [str(n) for n in range(int(records.labels.max()) + 1)] if len(records.labels) else []
    paths = [Path(f"{rec}#{key}") for key in records.keys]
    return TrainingSet(rec, paths, records.labels, classes, records=records.rec, offsets=records.offsets)


def read_training_set(
    data: str | os.PathLike[str], root: str | os.PathLike[str] | None = None, columns: list[str] | None = None
) -> TrainingSet:
    """A dataset folder (identity folders, nested or not) or a training list (cls_train.txt, CSV, CelebA)."""
    data = Path(data)
    if data.suffix == ".rec":
        found = _from_records(data)
    elif data.is_dir():
        found = _from_folder(data)
    elif data.is_file():
        found = _from_list(data, Path(root) if root is not None else None, columns)
    else:
        raise FaceCliError(f"{data}: no such dataset folder or annotation file")
    if found.num_classes < 2:
        raise FaceCliError(f"{data}: {found.num_classes} identity found; training needs at least 2 identities")
    return found


def decoded_cache_budget() -> int:
    """Bytes of decoded images one training process keeps: an eighth of the machine's memory, at most 4 GiB,
    shared by the processes of a multi-process run on this machine."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return min(4 << 30, memory // 8) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


class DecodedCache:
    """Decoded images kept in this process's memory, first come first kept until `budget` bytes are used.

    Reading and decoding is about 60% of a small image's cost in a loader worker; with the set in memory, the
    second epoch on only augments. An image is kept with its file's stamp (modification time, size) and read
    again when the file changed or went, so a damaged or deleted file is noticed as it was without the cache.
    Kept images are read-only: augmentation makes its own copy.
    """

    def __init__(self, budget: int) -> None:
        self.budget, self.used = budget, 0
        self.images: dict[int, tuple[np.ndarray, tuple[int, int] | None]] = {}

    def get(
        self, index: int, read: Callable[[int], np.ndarray], stamp: Callable[[int], tuple[int, int] | None]
    ) -> np.ndarray:
        """Image `index`, from memory while its stamp is unchanged, else from `read` (whose ImageError passes
        through, nothing kept)."""
        now = stamp(index)
        kept = self.images.pop(index, None)
        if kept is not None:
            if kept[1] == now:
                self.images[index] = kept
                return kept[0]
            self.used -= kept[0].nbytes
        image = read(index)
        if self.used + image.nbytes <= self.budget:
            image.flags.writeable = False
            self.images[index] = image, now
            self.used += image.nbytes
        return image


class TrainImages(Dataset):
    """Indexed by (image index, augmentation seed): the same seed always gives the same augmented uint8 pixels
    (the training step normalises the batch where the model runs).

    An image that fails to decode is replaced by another image of the same identity, tried in an order drawn
    from the seed, so a P x K batch keeps its shape and a resumed run makes the same choice. Decoded images
    are kept up to `cache_bytes`, split evenly between the loader workers (each keeps what it reads).
    """

    def __init__(self, data: TrainingSet, preprocessing: Preprocessing, aug: str, cache_bytes: int = 0) -> None:
        self.data, self.preprocessing, self.aug = data, preprocessing, aug
        self.members = [np.flatnonzero(data.labels == c) for c in range(data.num_classes)]
        self.cache_bytes = cache_bytes
        self.cache: DecodedCache | None = None  # made in the process that reads: each worker has its own

    def __len__(self) -> int:
        return len(self.data.paths)

    def __getitem__(self, item: tuple[int, int]) -> tuple[torch.Tensor, int, str, bool]:
        """(tensor, label, failures, kept): `failures` holds one `path<TAB>reason` line per image that failed;
        `kept` is False when no image of the identity could be read (the sample is then left out)."""
        index, seed = item
        label = int(self.data.labels[index])
        if self.cache is None:
            worker = get_worker_info()
            self.cache = DecodedCache(self.cache_bytes // (worker.num_workers if worker else 1))
        failures = []
        for candidate in self._candidates(index, label, seed):
            try:
                image = self.cache.get(candidate, self.data.read, self.data.stamp)
            except ImageError as exc:
                failures.append(f"{self.data.paths[candidate]}\t{exc}")
                continue
            image = augment(image, self.aug, random.Random(seed))
            return self.preprocessing.pixels(image), label, "\n".join(failures), True
        return self.preprocessing.blank(), label, "\n".join(failures), False

    def _candidates(self, index: int, label: int, seed: int) -> Iterator[int]:
        """The image itself, then the identity's other images in an order fixed by the seed."""
        yield index
        order = np.random.default_rng([seed, 1]).permutation(self.members[label])
        yield from (int(i) for i in order if i != index)


def train_loader(dataset: TrainImages, sampler: Sampler, workers: int, device: torch.device) -> DataLoader:
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
