"""Unpickle data files without running code from them.

A pickle can name any importable callable and have it called while loading, so a
downloaded .pkl file can run arbitrary code under plain `pickle.load`. This unpickler
resolves only the few names that numpy arrays and scalars need; every other name is
refused before anything is called. Builtin containers and str/bytes/int/float need no name.
"""

from __future__ import annotations

import codecs
import os
import pickle
from typing import Any

import numpy as np

from mamlkit.data.errors import DataError

__all__ = ["load_pickle_restricted"]


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The callables numpy's own pickles name, under numpy 1 and numpy 2 module paths."""
    reconstruct = np.zeros(1).__reduce__()[0]
    from_buffer = np.zeros(1).__reduce_ex__(5)[0]  # protocol 5 pickles arrays with it
    scalar = np.int64(0).__reduce__()[0]
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,  # protocols 0-2 store bytes as encoded str
    }
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = from_buffer
    return allowed


_ALLOWED_GLOBALS = _numpy_globals()


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, *, path: str) -> None:
        super().__init__(file, encoding="latin1")  # latin1 reads arrays pickled by Python 2
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DataError(
                f"refusing to load {self._path}: it asks to call {module}.{name}, and only "
                "plain containers and numpy arrays are allowed in data pickles. The file may "
                "be malicious or not the dataset you meant; get it again from a trusted source."
            ) from None


def load_pickle_restricted(path: str | os.PathLike) -> Any:
    """Load a pickle that may only hold dicts, lists, tuples, str, bytes, numbers and numpy arrays.

    Args:
        path: the .pkl file.

    Returns:
        The unpickled object.

    Raises:
        DataError: naming the file, when it is missing, truncated, not a pickle, or names
            anything other than numpy's array and scalar constructors.
    """
    try:
        with open(path, "rb") as file:
            return _RestrictedUnpickler(file, path=str(path)).load()
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except Exception as error:  # malformed bytes fail in many ways inside pickle
        raise DataError(f"cannot unpickle {path} ({error}); the file may be truncated") from None
