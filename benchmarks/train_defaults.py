"""`facecli train` with its defaults against a plain PyTorch training loop written as the FaceNet ports write it.

Same synthetic faces, backbone, input size and batch; triplet loss (margin 0.2) plus cross-entropy on a
linear classifier, AdamW, fp32 on the CPU, the same number of loader workers. The ports' loop: a Dataset
that returns (anchor, positive, negative) per item, each opened with PIL, randomly mirrored, letterboxed
(bicubic, grey), scaled to [0, 1] as float CHW; a DataLoader with shuffle, drop_last and pinned memory;
contiguous fp32; per step the losses and the classifier's accuracy are read back with .item() for the
progress bar. facecli: `facecli.train` with only data, backbone, size, batch, loss (triplet with the
auxiliary softmax) and epochs given. Rates are images per second over the epochs after the first (both
read every file in the first; facecli's workers keep decoded images after it), median of those epochs.
Usage: python benchmarks/train_defaults.py [--configs mobilenet:160:96 timm/resnet10t:32:64]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.utils.data import DataLoader, Dataset

from facecli.data import workers as worker_setup
from facecli.data.synth import synth
from facecli.models import create_model, default_config
from facecli.training import train
from facecli.training.options import TrainOptions


class PortTriplets(Dataset):
    """The ports' training item: an anchor and a positive of one identity and a negative of another."""

    def __init__(self, root: Path, size: int) -> None:
        self.size = size
        self.identities = [sorted(folder.glob("*.jpg")) for folder in sorted(root.iterdir())]
        self.count = sum(len(files) for files in self.identities)

    def __len__(self) -> int:
        return self.count // 3  # an epoch sees as many images as the set holds

    def _load(self, path: Path) -> np.ndarray:
        image = Image.open(path).convert("RGB")
        if random.random() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        w, h = image.size
        scale = min(self.size / w, self.size / h)
        resized = image.resize((int(w * scale), int(h * scale)), Image.BICUBIC)
        canvas = Image.new("RGB", (self.size, self.size), (128, 128, 128))
        canvas.paste(resized, ((self.size - resized.size[0]) // 2, (self.size - resized.size[1]) // 2))
        return np.transpose(np.asarray(canvas, np.float32) / 255.0, (2, 0, 1))

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        anchor_id, negative_id = random.sample(range(len(self.identities)), 2)
        anchor, positive = random.sample(self.identities[anchor_id], 2)
        negative = random.choice(self.identities[negative_id])
        images = np.stack([self._load(anchor), self._load(positive), self._load(negative)])
        return images, np.array([anchor_id, anchor_id, negative_id])


def port_collate(batch: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    """All anchors, then all positives, then all negatives, as the ports' collate lays them out, in a new
    C-order array (np.stack would keep the images' HWC memory order: channels_last without asking)."""
    images = np.array([item[0][i] for i in range(3) for item in batch])
    labels = np.array([item[1][i] for i in range(3) for item in batch])
    return torch.from_numpy(images), torch.from_numpy(labels)


def port_triplet_loss(embeddings: torch.Tensor, alpha: float = 0.2) -> torch.Tensor:
    """The ports' triplet loss: distances of the thirds, triplets inside the margin picked on the host."""
    anchor, positive, negative = embeddings.chunk(3)
    pos_dist = (anchor - positive).pow(2).sum(-1).sqrt()
    neg_dist = (anchor - negative).pow(2).sum(-1).sqrt()
    hard = np.where((neg_dist - pos_dist < alpha).cpu().numpy())[0]
    return (pos_dist[hard] - neg_dist[hard] + alpha).sum() / max(1, len(hard))


def port_rate(root: Path, backbone: str, size: int, batch: int, classes: int, epochs: int, workers: int) -> float:
    """Median images/s of epochs 2 onwards of the ports' loop."""
    torch.manual_seed(0)
    model = create_model(default_config(backbone, 128, size, 0.0, loss="triplet", num_classes=classes))
    classifier = nn.Linear(128, classes)
    optimizer = torch.optim.AdamW([*model.parameters(), *classifier.parameters()], 1e-3, weight_decay=5e-4)
    loader = DataLoader(
        PortTriplets(root, size), batch_size=batch // 3, shuffle=True, num_workers=workers, pin_memory=True,
        drop_last=True, collate_fn=port_collate, persistent_workers=workers > 0,
        multiprocessing_context=worker_setup.worker_start(workers),
    )  # fmt: skip
    model.train()
    rates = []
    for _ in range(epochs):
        started, seen, total_loss, total_accuracy = time.perf_counter(), 0, 0.0, 0.0
        for images, labels in loader:
            assert images.is_contiguous()  # the ports' plain NCHW batch
            optimizer.zero_grad()
            embeddings = model(images)
            logits = classifier(embeddings)
            triplet = port_triplet_loss(F.normalize(embeddings))
            ce = F.nll_loss(F.log_softmax(logits, dim=-1), labels)
            (triplet + ce).backward()
            optimizer.step()
            total_loss += (triplet + ce).item()
            total_accuracy += (logits.argmax(-1) == labels).float().mean().item()
            seen += len(images)
        rates.append(seen / (time.perf_counter() - started))
    return statistics.median(rates[1:])


def facecli_rate(root: Path, run: Path, backbone: str, size: int, batch: int, epochs: int) -> tuple[float, str]:
    """Median images/s of epochs 2 onwards of `facecli train` with its defaults, and its runtime line."""
    options = TrainOptions(
        data=root, run_dir=run, backbone=backbone, img_size=size, batch_size=batch, loss="triplet",
        aux_ce_weight=1.0, epochs=epochs, device="cpu",
    )  # fmt: skip
    result = train(options)
    return statistics.median(row["images_per_s"] for row in result.history[1:]), result.notes[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["mobilenet:160:96", "timm/resnet10t:32:64"],
                        help="backbone:size:batch")  # fmt: skip
    parser.add_argument("--identities", type=int, default=48)
    parser.add_argument("--steps", type=int, default=8, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=worker_setup.default_workers())
    args = parser.parse_args()
    table = Table(title=f"training images/s, {args.workers} loader worker(s), epochs 2-{args.epochs}")
    for column in ("backbone", "input", "batch", "ports' loop", "facecli train", "x ports' loop", "facecli runtime"):
        table.add_column(column, justify="right")
    for config in args.configs:
        backbone, size, batch = config.split(":")
        size, batch = int(size), int(batch)
        per_identity = max(3, -(-args.steps * batch // args.identities))
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "faces"
            synth(root, identities=args.identities, images=per_identity, size=size, seed=0)
            port = port_rate(root, backbone, size, batch, args.identities, args.epochs, args.workers)
            ours, runtime = facecli_rate(root, Path(tmp) / "run", backbone, size, batch, args.epochs)
        table.add_row(backbone, str(size), str(batch), f"{port:.1f}", f"{ours:.1f}", f"{ours / port:.2f}",
                      runtime.split(";")[0])  # fmt: skip
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
