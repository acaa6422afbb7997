"""insightface's validation sets (`lfw.bin`, `cfp_fp.bin`, `agedb_30.bin`): a pickled `(list of encoded
images, list of bool)`, read without executing code, and written from any pairs file.

Images come in pairs, in order (2i, 2i+1) with `issame[i]`. Reading uses an unpickler that builds only
the containers, bytes and bools such files hold; anything that would import or call something is refused
and never runs.
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

from facecli.errors import FaceCliError
from facecli.fileio import atomic_path


class _DataOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        raise pickle.UnpicklingError(f"it asks for {module}.{name}; a .bin set holds only images and labels")


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
        raise FaceCliError(f"{path}: refused: {exc}") from None
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
        raise FaceCliError(f"{path}: not a readable .bin set ({type(exc).__name__})") from None
    if not (isinstance(loaded, tuple | list) and len(loaded) == 2):
        raise FaceCliError(f"{path}: expected (images, issame), got a {type(loaded).__name__}")
    images, issame = list(loaded[0]), list(loaded[1])
    if not all(isinstance(x, bytes | bytearray) for x in images) or not all(isinstance(x, bool) for x in issame):
        raise FaceCliError(f"{path}: expected a list of encoded images and a list of bools")
    if len(images) != 2 * len(issame):
        raise FaceCliError(f"{path}: {len(images)} images for {len(issame)} pairs (two images per pair)")
    return BinSet(path, [bytes(x) for x in images], issame)


def write_bin(path: str | os.PathLike[str], images: list[bytes], issame: list[bool]) -> None:
    """Write a .bin as insightface does: pickle of (images, issame), highest protocol."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        pickle.dump((images, issame), f, protocol=pickle.HIGHEST_PROTOCOL)
