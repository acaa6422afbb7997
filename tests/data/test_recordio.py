"""insightface RecordIO read without MXNet, against .rec files written here by an independent writer that
follows MXNet's documented layout (dmlc-core recordio: magic, lrecord = cflag << 29 | length, 4-byte
padding, payloads holding the magic split into parts; mx.recordio.pack's IRHeader `IfQQ`)."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from facecli.data.images import decode
from facecli.data.recordio import open_record_set
from facecli.errors import FaceCliError

KMAGIC = 0xCED7230A


def _frame(payload: bytes) -> bytes:
    """dmlc-core's WriteRecord: split at each occurrence of the magic (aligned to 4), flag 1/2/3, pad to 4."""
    magic = struct.pack("<I", KMAGIC)
    parts, start = [], 0
    for pos in range(0, len(payload) - 3, 4):
        if payload[pos : pos + 4] == magic:
            parts.append(payload[start:pos])
            start = pos + 4
    parts.append(payload[start:])
    out = b""
    for n, part in enumerate(parts):
        flag = 0 if len(parts) == 1 else 1 if n == 0 else 3 if n == len(parts) - 1 else 2
        out += magic + struct.pack("<I", (flag << 29) | len(part)) + part + b"\0" * ((4 - len(part) % 4) % 4)
    return out


def _pack(labels: list[float], image: bytes = b"", ident: int = 0) -> bytes:
    """mx.recordio.pack: IRHeader(flag, label, id, id2); flag = len(labels) > 1, labels follow the header."""
    if len(labels) == 1:
        return struct.pack("<IfQQ", 0, labels[0], ident, 0) + image
    return struct.pack("<IfQQ", len(labels), 0.0, ident, 0) + np.array(labels, "<f4").tobytes() + image


def _write(folder, records: dict[int, bytes]) -> tuple:
    rec, idx, offset = folder / "train.rec", folder / "train.idx", 0
    with open(rec, "wb") as f, open(idx, "w") as index:
        for key, payload in records.items():
            framed = _frame(payload)
            f.write(framed)
            index.write(f"{key}\t{offset}\n")
            offset += len(framed)
    return rec, idx


def _jpeg(value: int) -> bytes:
    return cv2.imencode(".jpg", np.full((16, 16, 3), value, np.uint8))[1].tobytes()


@pytest.fixture
def insightface_rec(tmp_path):
    """2 identities: images 1-3 and 4-5, identity records 6 and 7, header record 0 = (6, 8)."""
    records = {0: _pack([6.0, 8.0])}
    for key, identity in ((1, 0), (2, 0), (3, 0), (4, 1), (5, 1)):
        records[key] = _pack([float(identity)], _jpeg(40 * key), key)
    records[6], records[7] = _pack([1.0, 4.0]), _pack([4.0, 6.0])
    return _write(tmp_path, records)


def test_an_insightface_set_is_read_with_its_identities_and_images(insightface_rec):
    found = open_record_set(insightface_rec[0])
    assert found.keys == [1, 2, 3, 4, 5] and found.labels.tolist() == [0, 0, 0, 1, 1]
    image = decode(found.rec.image_record(found.offsets[2], 3).image)
    assert image.shape == (16, 16, 3) and abs(int(image.mean()) - 120) <= 2


def test_a_payload_holding_the_magic_is_joined_from_its_parts(tmp_path):
    image = _jpeg(7) + struct.pack("<I", KMAGIC) + b"tail"  # the magic inside the payload, 4-aligned or not
    image += b"\0" * ((4 - (len(image) + 24) % 4) % 4) + struct.pack("<I", KMAGIC) + b"end!"
    rec, _ = _write(tmp_path, {0: _pack([3.0], image)})
    found = open_record_set(rec)
    assert found.labels.tolist() == [3] and found.rec.image_record(found.offsets[0], 0).image == image


@pytest.mark.parametrize(
    ("damage", "expect"),
    [
        ("truncated rec", "record 7: truncated"),
        ("idx past the end", "train.idx: record 5 is at offset 99999, past the end of"),
        ("wrong magic", "record 1: wrong magic"),
        ("bad idx line", "train.idx line 3: expected '<key>\\t<offset>'"),
    ],
)
def test_damaged_sets_name_the_file_and_record(insightface_rec, damage, expect):
    rec, idx = insightface_rec
    lines = idx.read_text().splitlines()
    if damage == "truncated rec":
        offset = int(lines[7].split("\t")[1])  # the last record, an identity's
        rec.write_bytes(rec.read_bytes()[: offset + 12])
    elif damage == "idx past the end":
        lines[5] = "5\t99999"
    elif damage == "wrong magic":
        data = bytearray(rec.read_bytes())
        data[int(lines[1].split("\t")[1])] ^= 0xFF
        rec.write_bytes(bytes(data))
    else:
        lines[2] = "2 x"
    if damage != "truncated rec":
        idx.write_text("\n".join(lines) + "\n")
    with pytest.raises(FaceCliError, match=expect.replace("\\t", "\\\\t")):
        found = open_record_set(rec)
        for key, offset in zip(found.keys, found.offsets, strict=True):
            found.rec.image_record(offset, key)


def test_train_reads_a_rec_in_loader_workers_and_replaces_a_record_that_will_not_decode(tmp_path):
    from facecli.data.synth import synth
    from facecli.training import TrainOptions, train

    synth(tmp_path / "faces", identities=3, images=4, size=32, seed=3)
    folders = sorted((tmp_path / "faces").iterdir())
    images = [(n, f.read_bytes()) for n, folder in enumerate(folders) for f in sorted(folder.iterdir())]
    images[5] = (images[5][0], images[5][1][:-300])  # a record whose JPEG is cut short
    records, key = {}, 1
    for label, data in images:
        records[key] = _pack([float(label)], data, key)
        key += 1
    first_identity = key
    for label in range(3):
        start = 1 + 4 * label
        records[key] = _pack([float(start), float(start + 4)])
        key += 1
    records = {0: _pack([float(first_identity), float(key)]), **records}
    rec, _ = _write(tmp_path, records)
    options = TrainOptions(data=rec, run_dir=tmp_path / "run", backbone="mobilenet", img_size=32,
                           embedding_size=8, loss="softmax", epochs=2, batch_size=4, workers=1, device="cpu",
                           max_bad_fraction=0.2)  # fmt: skip
    result = train(options)
    assert result.stopped == "finished" and result.bad_images == 1
    assert (tmp_path / "run" / "bad_images.txt").read_text().startswith(f"{rec}#6\ttruncated JPEG")
