"""insightface's validation sets (`lfw.bin`, `cfp_fp.bin`, `agedb_30.bin`): a pickled `(list of encoded
images, list of bool)`, read without executing code, and written from any pairs file.

Images come in pairs, in order (2i, 2i+1) with `issame[i]`. Reading uses an unpickler that builds only
the containers, bytes and bools such files hold, and exactly the reconstructions the field's own writers
put there: protocol-2 bytes (`_codecs.encode(text, "latin1")`), and numpy arrays of uint8 or bool (what
`cv2.imencode` returns, an `issame` array), as `torch.load(weights_only=True)` allows its own list.
Anything else that would import or call something is refused and never runs.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecli.errors import FaceCliError
from facecli.fileio import atomic_path

DATA_DTYPES = (np.dtype(np.uint8), np.dtype(np.bool_))  # encoded image bytes, issame labels


def _latin1(text: str, encoding: str) -> bytes:
    """How pickle protocol 2 stores bytes under Python 3: text and the codec that turns it back."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r}; a .bin set stores bytes as latin1")
    return text.encode("latin1")


def _dtype(name: object, align: object = False, copy: object = True) -> np.dtype:
    dtype = np.dtype(name) if isinstance(name, str) else None
    if dtype not in DATA_DTYPES:
        raise pickle.UnpicklingError(f"a numpy array of {name!r}; a .bin set holds uint8 images and bool labels")
    return dtype


def _empty_array(cls: object, shape: object, typecode: object) -> np.ndarray:
    """numpy's `_reconstruct`: an empty array that the file's state then fills (its dtype checked by _dtype)."""
    if cls is not np.ndarray:
        raise pickle.UnpicklingError("an ndarray subclass; a .bin set holds plain arrays")
    return np.ndarray.__new__(np.ndarray, (0,), np.uint8)


def _scalar(dtype: np.dtype, data: bytes) -> object:
    """A numpy bool or uint8 scalar (an issame item)."""
    return np.frombuffer(data, _dtype(dtype.str if isinstance(dtype, np.dtype) else dtype), count=1)[0].item()


def _from_buffer(buffer: object, dtype: np.dtype, shape: object, order: object) -> np.ndarray:
    """numpy's pickle protocol 5 form of an array."""
    return np.frombuffer(buffer, _dtype(dtype.str if isinstance(dtype, np.dtype) else dtype)).reshape(shape)


ALLOWED: dict[tuple[str, str], Callable[..., object]] = {
    ("_codecs", "encode"): _latin1,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    **{(module, "_reconstruct"): _empty_array for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(module, "scalar"): _scalar for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(module, "_frombuffer"): _from_buffer for module in ("numpy.core.numeric", "numpy._core.numeric")},
}


class _DataOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) in ALLOWED:
            return ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"it asks for {module}.{name}; a .bin set holds only images and labels")


def _as_bytes(image: object) -> bytes | None:
    if isinstance(image, bytes | bytearray):
        return bytes(image)
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim <= 2:
        return image.tobytes()  # cv2.imencode's (n, 1) array
    return None


@dataclass
class BinSet:
    """Encoded images, two per pair, and each pair's label."""

    source: Path
    images: list[bytes]
    issame: list[bool]

    def __len__(self) -> int:
        return len(self.issame)


def read_bin(path: str | os.PathLike[str]) -> BinSet:
    """A .bin validation set; a file holding anything but data is a one-line error and its code never runs."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FaceCliError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        loaded = _DataOnly(io.BytesIO(data), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        if str(exc).startswith("invalid load key"):  # pickle's own words for bytes that are no pickle
            raise FaceCliError(f"{path}: not a .bin set (a pickle of encoded images and labels)") from None
        raise FaceCliError(f"{path}: refused: {exc}") from None
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
        raise FaceCliError(f"{path}: not a readable .bin set ({type(exc).__name__})") from None
    if not (isinstance(loaded, tuple | list) and len(loaded) == 2):
        raise FaceCliError(f"{path}: expected (images, issame), got a {type(loaded).__name__}")
    labels = loaded[1].tolist() if isinstance(loaded[1], np.ndarray) else loaded[1]
    try:
        images, issame = [_as_bytes(x) for x in loaded[0]], list(labels)
    except TypeError:
        raise FaceCliError(f"{path}: expected a list of encoded images and a list of bools") from None
    if any(x is None for x in images) or not all(isinstance(x, bool) for x in issame):
        raise FaceCliError(f"{path}: expected a list of encoded images and a list of bools")
    if len(images) != 2 * len(issame):
        raise FaceCliError(f"{path}: {len(images)} images for {len(issame)} pairs (two images per pair)")
    return BinSet(path, images, issame)


def write_bin(path: str | os.PathLike[str], images: list[bytes], issame: list[bool]) -> None:
    """Write a .bin as insightface does: pickle of (images, issame), highest protocol."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        pickle.dump((images, issame), f, protocol=pickle.HIGHEST_PROTOCOL)
