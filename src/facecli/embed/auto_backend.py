"""`--backend auto` (the default): ONNX Runtime on CPUs for the backbones it runs faster there (measured,
benchmarks/auto_choices.py), PyTorch otherwise.

Each model is exported once, checked against PyTorch exactly as `facecli export` checks, kept in the cache
under the model file's hash and reused; a model that cannot be exported or fails the check is remembered
too (tried once), and runs on PyTorch with a one-line note.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from facecli.checkpoint import load, read_config
from facecli.embed.backends import Backend, Embedder, OnnxEmbedder, TorchEmbedder, open_embedder
from facecli.embed.cache import file_hash
from facecli.embed.onnx_export import check_agreement, export_onnx, verification_inputs
from facecli.errors import FaceCliError, os_error
from facecli.fileio import atomic_path, write_text_atomic
from facecli.runtime import Runtime

# backbones PyTorch runs faster than ONNX Runtime on this CPU: none measured (benchmarks/auto_choices.py,
# RESULTS.md: ONNX Runtime against PyTorch channels_last, images/s, mobilenet 212 vs 92, iresnet18 23.5 vs
# 19.9, vgg16 25.9 vs 22.5, resnet10t at 32 px 2639 vs 1635; level for inception_resnetv1 51.1 vs 50.1 and
# iresnet50 12.2 vs 12.5)
ONNX_SLOWER_ON_CPU: frozenset[str] = frozenset()
log = logging.getLogger(__name__)
EXPORT_ROOM = 4  # free space, in model sizes, below which a failed export is not remembered as the model's
# the exporter the cache tries first: every first run of a model pays its export, and the TorchScript-based one
# was ~10x faster to run (2-core CPU: mobilenet 64 px 0.4 s against torch.export's 3.9 s, iresnet18 0.4 vs 4.5,
# inception_resnetv1 1.4 vs 12.1, iresnet50 1.2 vs 8.1); its file is checked against PyTorch all the same, and
# torch.export's exporter takes over where it fails or once PyTorch removes it. `facecli export` writes the
# files users keep with torch.export's.
CACHE_EXPORTER = "legacy"


def cache_root() -> Path:
    """$FACECLI_CACHE, else $XDG_CACHE_HOME/facecli, else ~/.cache/facecli."""
    if os.environ.get("FACECLI_CACHE"):
        return Path(os.environ["FACECLI_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "facecli"


def cached_onnx(checkpoint: Path, model_hash: str) -> tuple[Path | None, str]:
    """(the checked ONNX file of this model, how it was found) or (None, why there is none)."""
    folder = cache_root() / "onnx"
    path, failed = folder / f"{model_hash}.onnx", folder / f"{model_hash}.failed"
    if path.is_file():
        return path, f"exported before ({path})"
    if failed.is_file():
        return None, failed.read_text(encoding="utf-8", errors="replace").strip()
    try:
        model = load(checkpoint)
        with atomic_path(path) as tmp:  # appears only once it has passed the check
            export_onnx(model, tmp, prefer=CACHE_EXPORTER)
            x = verification_inputs(model)
            diff, _ = check_agreement(path.name, OnnxEmbedder(tmp).run(x.numpy()), model, x)
    except OSError as exc:  # a read-only $HOME or cache, a full disk: nothing to remember, PyTorch runs it
        return None, f"the ONNX cache cannot be written: {os_error(exc)}; set FACECLI_CACHE to a writable folder"
    except (FaceCliError, RuntimeError, ValueError) as exc:  # an architecture the exporter cannot trace
        why = f"its ONNX export failed ({' '.join(str(exc).split())[:200]})"
        if _room_to_export(folder, checkpoint):  # a failure on a nearly full disk may be the disk's: not kept
            _remember(failed, why)
        return None, why
    return path, f"exported once to {path}, max abs diff {diff:.1e} from PyTorch"


def _room_to_export(folder: Path, checkpoint: Path) -> bool:
    """Whether the cache's disk has room for a few exports of this model (an export is about its size)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free > EXPORT_ROOM * checkpoint.stat().st_size
    except OSError:
        return False


def _remember(failed: Path, why: str) -> None:
    """Note that this model does not export, so later commands skip trying; unwritable: tried again later."""
    try:
        write_text_atomic(failed, why + "\n")
    except OSError:
        log.debug(f"{failed}: not written; the export is tried again next time")


def open_model(path: Path, backend: Backend, runtime: Runtime) -> Embedder:
    """The model behind `backend`; for `auto`, the faster backend for this device and backbone, said in one line."""
    log.info(runtime.describe() if backend != "onnx" else "runtime: onnxruntime")
    if backend != "auto":
        return open_embedder(path, backend, runtime)
    if path.suffix == ".onnx":
        return open_embedder(path, "onnx", runtime)
    config = read_config(path)
    if runtime.device.type != "cpu" or config.backbone in ONNX_SLOWER_ON_CPU:
        return TorchEmbedder(load(path), runtime)
    onnx, how = cached_onnx(path, file_hash(path))
    if onnx is not None:
        try:
            embedder = OnnxEmbedder(onnx)
        except FaceCliError as exc:  # the cached file was damaged since: export again next time
            onnx.unlink(missing_ok=True)
            how = str(exc)
        else:
            log.info(f"backend: onnxruntime (auto: faster than PyTorch for {config.backbone} on CPUs; {how})")
            return embedder
    log.info(f"backend: torch ({how})")
    return TorchEmbedder(load(path), runtime)
