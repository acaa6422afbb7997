"""insightface training sets in MXNet RecordIO (`train.rec` + `train.idx`), read without MXNet.

The record framing: each record is a little-endian uint32 magic (0xced7230a), a uint32 whose top 3 bits
are a continuation flag and low 29 bits the length, the payload, and zero padding to 4 bytes. A payload
that itself holds the magic is stored in parts (flag 1 first, 2 middle, 3 last) and joined with the
magic. The payload is an image record: a header `<IfQQ` (flag, label, id, id2), `flag` float32 labels
when flag > 0, then the encoded image. insightface's sets start with a header record (key 0) whose labels
are the key range of the identity records; images are the keys before it.
"""

from __future__ import annotations

import os
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecli.errors import FaceCliError
from facecli.fileio import atomic_path, read_text, write_text_atomic

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
HEADER = struct.Struct("<IfQQ")


@dataclass(frozen=True)
class ImageRecord:
    """One record's labels and its encoded image bytes."""

    labels: tuple[float, ...]
    image: bytes


def read_idx(path: Path) -> dict[int, int]:
    """`key<TAB>offset` lines: the byte offset of each record."""
    offsets = {}
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not all(f.isdigit() for f in fields):
            raise FaceCliError(f"{path} line {lineno}: expected '<key>\\t<offset>', got {line.strip()!r}")
        offsets[int(fields[0])] = int(fields[1])
    if not offsets:
        raise FaceCliError(f"{path}: no records indexed")
    return offsets


class RecordFile:
    """Random access to the records of a .rec by offset; opens its file lazily (one handle per process)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FaceCliError(f"{self.path}: no such RecordIO file")
        self.size = self.path.stat().st_size
        self._file = None
        self._pid = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_file": None, "_pid": None}  # each loader worker opens its own handle

    def _handle(self):  # noqa: ANN202
        if self._file is None or self._pid != os.getpid():  # a loader worker opens its own
            self._file, self._pid = open(self.path, "rb"), os.getpid()  # noqa: SIM115
        return self._file

    def payload(self, offset: int, key: int | str = "?") -> bytes:
        """The payload of the record at `offset`, its parts joined."""
        if offset >= self.size:
            raise FaceCliError(f"{self.path} record {key}: offset {offset} is past the end ({self.size} bytes)")
        f = self._handle()
        f.seek(offset)
        parts = []
        while True:
            head = f.read(8)
            if len(head) < 8:
                raise FaceCliError(f"{self.path} record {key}: truncated (the file ends inside it)")
            magic, lrecord = struct.unpack("<II", head)
            if magic != MAGIC:
                raise FaceCliError(f"{self.path} record {key}: wrong magic {magic:#010x} (not a RecordIO record)")
            flag, length = lrecord >> 29, lrecord & ((1 << 29) - 1)
            data = f.read(length)
            if len(data) < length:
                raise FaceCliError(f"{self.path} record {key}: truncated (the file ends inside it)")
            f.read((4 - length % 4) % 4)
            parts.append(data)
            if flag in (0, 3):
                return MAGIC_BYTES.join(parts)
            if flag not in (1, 2):
                raise FaceCliError(f"{self.path} record {key}: unknown continuation flag {flag}")

    def image_record(self, offset: int, key: int | str = "?") -> ImageRecord:
        """The labels and image bytes of an image record."""
        data = self.payload(offset, key)
        if len(data) < HEADER.size:
            raise FaceCliError(f"{self.path} record {key}: {len(data)} bytes, too short for an image record header")
        flag, label, _, _ = HEADER.unpack_from(data)
        if flag == 0:
            return ImageRecord((label,), data[HEADER.size :])
        end = HEADER.size + 4 * flag
        if len(data) < end:
            raise FaceCliError(f"{self.path} record {key}: header claims {flag} labels, the record is shorter")
        return ImageRecord(tuple(np.frombuffer(data[HEADER.size : end], "<f4").tolist()), data[end:])


@dataclass
class RecordSet:
    """The image records of an insightface .rec: their keys, offsets and integer identity labels."""

    rec: RecordFile
    keys: list[int]
    offsets: list[int]
    labels: np.ndarray


def open_record_set(rec: str | os.PathLike[str], idx: str | os.PathLike[str] | None = None) -> RecordSet:
    """The images of `train.rec` (index `train.idx` beside it unless given), labels from their headers."""
    rec = Path(rec)
    idx = Path(idx) if idx is not None else rec.with_suffix(".idx")
    if not idx.is_file():
        raise FaceCliError(f"{idx}: no index beside {rec} (a .rec is read through its .idx)")
    offsets = read_idx(idx)
    records = RecordFile(rec)
    beyond = [k for k, offset in offsets.items() if offset >= records.size]
    if beyond:
        raise FaceCliError(
            f"{idx}: record {beyond[0]} is at offset {offsets[beyond[0]]}, past the end of {rec} "
            f"({records.size} bytes; {len(beyond)} such record(s)): truncated .rec or the wrong .idx"
        )
    keys = sorted(offsets)
    first = records.image_record(offsets[keys[0]], keys[0])
    if keys[0] == 0 and len(first.labels) >= 2:
        return _insightface_set(records, offsets, first.labels)
    labels = [int(records.image_record(offsets[k], k).labels[0]) for k in keys]  # no header record: each image's
    return RecordSet(records, keys, [offsets[k] for k in keys], np.array(labels, np.int64))


def _insightface_set(records: RecordFile, offsets: dict[int, int], header: tuple[float, ...]) -> RecordSet:
    """Images are keys 1 .. header[0]-1; identity records (keys header[0] .. header[1]-1) each hold the key
    range of their images, so labels come from one read per identity, not one per image."""
    images_end, identities_end = int(header[0]), int(header[1])
    keys, labels = [], []
    for label, key in enumerate(range(images_end, identities_end)):
        if key not in offsets:
            raise FaceCliError(f"{records.path}: identity record {key} is not in the index")
        span = records.image_record(offsets[key], key).labels
        if len(span) < 2 or not 0 < span[0] <= span[1] <= images_end:
            raise FaceCliError(f"{records.path} record {key}: not an identity record (labels {span[:2]})")
        for image in range(int(span[0]), int(span[1])):
            if image not in offsets:
                raise FaceCliError(f"{records.path}: image record {image} is not in the index")
            keys.append(image)
            labels.append(label)
    return RecordSet(records, keys, [offsets[k] for k in keys], np.array(labels, np.int64))


def _framed(payload: bytes) -> bytes:
    """One record: split around each 4-aligned occurrence of the magic, each part framed and padded."""
    parts, start = [], 0
    for pos in range(0, len(payload) - 3, 4):
        if payload[pos : pos + 4] == MAGIC_BYTES:
            parts.append(payload[start:pos])
            start = pos + 4
    parts.append(payload[start:])
    out = bytearray()
    for n, part in enumerate(parts):
        flag = 0 if len(parts) == 1 else 1 if n == 0 else 3 if n == len(parts) - 1 else 2
        out += MAGIC_BYTES + struct.pack("<I", (flag << 29) | len(part)) + part + b"\0" * ((4 - len(part) % 4) % 4)
    return bytes(out)


def _image_payload(labels: tuple[float, ...], image: bytes, key: int) -> bytes:
    if len(labels) == 1:
        return HEADER.pack(0, labels[0], key, 0) + image
    return HEADER.pack(len(labels), 0.0, key, 0) + np.array(labels, "<f4").tobytes() + image


def write_record_set(rec: Path, images: list[tuple[int, Path]]) -> int:
    """Write an insightface-layout .rec and its .idx from (label, image file) pairs: a header record, the
    images (grouped by identity, keys from 1, read one at a time) and one identity record per label holding
    its image key range. Returns the images written."""
    ordered = sorted(images, key=lambda item: item[0])
    counts = Counter(label for label, _ in ordered)
    if sorted(counts) != list(range(len(counts))):
        raise FaceCliError(f"{rec}: identity labels must be 0..{len(counts) - 1}")
    images_end = len(ordered) + 1
    spans, key = [], 1
    for label in range(len(counts)):
        spans.append((float(key), float(key + counts[label])))
        key += counts[label]
    lines, offset = [], 0
    with atomic_path(rec) as tmp, open(tmp, "wb") as f:

        def put(k: int, payload: bytes) -> None:
            nonlocal offset
            framed = _framed(payload)
            f.write(framed)
            lines.append(f"{k}\t{offset}\n")
            offset += len(framed)

        put(0, _image_payload((float(images_end), float(images_end + len(counts))), b"", 0))
        for k, (label, path) in enumerate(ordered, 1):
            put(k, _image_payload((float(label),), path.read_bytes(), k))
        for n, span in enumerate(spans):
            put(images_end + n, _image_payload(span, b"", 0))
        write_text_atomic(rec.with_suffix(".idx"), "".join(lines))  # the index first: no .rec without one
    return len(ordered)
