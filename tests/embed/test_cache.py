"""The embedding cache: appends cost only their new entries, shards merge, two writers at once lose nothing."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import numpy as np

from facecli.embed import cache as cache_module
from facecli.embed.cache import EmbeddingCache


def _vectors(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 8)).astype(np.float32)


def test_each_put_writes_only_its_new_entries_and_a_new_cache_reads_them_all(tmp_path):
    cache = EmbeddingCache(tmp_path, "model")
    cache.put([f"a{i}" for i in range(100)], _vectors(100, 0))
    cache.put(["b0", "b1"], _vectors(2, 1))
    sizes = sorted(len(np.load(f)["keys"]) for f in (tmp_path / "model").glob("*.npz"))
    assert sizes == [2, 100]  # the second put did not rewrite the first hundred
    again = EmbeddingCache(tmp_path, "model")
    assert len(again) == 102
    assert np.array_equal(again.get(["b1"])["b1"], _vectors(2, 1)[1])
    assert EmbeddingCache(tmp_path, "other model").get(["b1"]) == {}


def test_past_the_shard_limit_the_shards_merge_into_one_with_every_entry(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "MAX_SHARDS", 4)
    cache = EmbeddingCache(tmp_path, "model")
    for n in range(5):
        cache.put([f"k{n}"], _vectors(1, n))
    assert len(list((tmp_path / "model").glob("*.npz"))) == 1
    merged = EmbeddingCache(tmp_path, "model")
    assert len(merged) == 5 and all(np.array_equal(merged.get([f"k{n}"])[f"k{n}"], _vectors(1, n)[0]) for n in range(5))


def _writer(folder: str, name: str, puts: int) -> None:
    cache_module.MAX_SHARDS = 8  # merges happen while the other process writes
    for n in range(puts):
        cache = EmbeddingCache(folder, "model")  # each put from a fresh view, as separate commands would
        cache.put([f"{name}{n}"], _vectors(1, n))


def test_two_processes_writing_at_once_lose_no_entry_and_damage_nothing(tmp_path, capsys):
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_writer, args=(str(tmp_path), name, 40)) for name in ("x", "y")]
    for process in writers:
        process.start()
    for process in writers:
        process.join(120)
        assert process.exitcode == 0
    assert len(list((tmp_path / "model").glob("*.npz"))) <= 9
    final = EmbeddingCache(tmp_path, "model")
    assert set(final.rows) == {f"{name}{n}" for name in ("x", "y") for n in range(40)}
    assert "warning" not in capsys.readouterr().err


def test_the_same_relative_name_in_another_folder_is_another_image(tmp_path, monkeypatch, synth_dataset):
    from facecli.checkpoint import save_model
    from facecli.embed import EmbedOptions, embed_files
    from facecli.models import create_model
    from facecli.runtime import resolve_runtime

    save_model(create_model("mobilenet", input_size=32, embedding_size=16).eval(), tmp_path / "m.safetensors")
    first, second = sorted(synth_dataset.rglob("*.jpg"))[:2]
    for folder, image in (("a", first), ("b", second)):  # same name, same size and mtime, other faces
        (tmp_path / folder).mkdir()
        data = image.read_bytes()
        (tmp_path / folder / "face.jpg").write_bytes(data + b"\0" * (4000 - len(data)))
        os.utime(tmp_path / folder / "face.jpg", ns=(1_000_000_000, 1_000_000_000))
    options = EmbedOptions(resolve_runtime("cpu", "fp32"), "torch", workers=0, cache_dir=tmp_path / "cache")
    found = {}
    for folder in ("a", "b"):
        monkeypatch.chdir(tmp_path / folder)
        done = embed_files(tmp_path / "m.safetensors", [Path("face.jpg")], options)
        assert done.embedded == 1  # b's face was embedded, not taken from a's entry
        found[folder] = done.vectors
    assert not np.allclose(found["a"], found["b"])


def test_a_file_replaced_by_a_copy_keeping_its_size_and_mtime_is_embedded_again(tmp_path):
    image = tmp_path / "face.jpg"
    image.write_bytes(b"x" * 100)
    os.utime(image, ns=(1_000_000_000, 1_000_000_000))
    before = cache_module.image_key(image, flip=False)
    replacement = tmp_path / "new.jpg"
    replacement.write_bytes(b"y" * 100)
    os.utime(replacement, ns=(1_000_000_000, 1_000_000_000))
    os.replace(replacement, image)  # as `cp -p` or `rsync -a` leave it
    assert cache_module.image_key(image, flip=False) != before
    assert cache_module.image_key(Path(os.path.relpath(image)), flip=False) == cache_module.image_key(image, False)
