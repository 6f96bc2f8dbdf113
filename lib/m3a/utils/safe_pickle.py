"""A restricted, allocation-capped unpickler for the published lexicon files.

Only numpy arrays and scalars, dicts, OrderedDicts, lists, tuples, strings and numbers may be
rebuilt; any other global (the way a malicious pickle runs code) raises UnsafePickleError, and
so do object arrays (``dtype=object``).

A pickle cannot make the loader allocate much more than the file holds: every call the pickle
makes (``bytes(n)``, ``numpy.ndarray(shape)``, the ``_reconstruct`` + state of an array, a
container built from another object, ...) is charged its size in bytes *before* it runs, and the
load stops once the charges pass ``max_bytes`` (default: ``max(MIN_BUDGET, BUDGET_FACTOR * file
size)``). Every failure (truncated or malformed data, a forbidden global, a call with bad
arguments, the cap) is raised as PickleLoadError naming the file.

This uses the standard library's pure-Python unpickler (``pickle._Unpickler``): unlike the C
one, it lets the ``BUILD`` opcode (which copies an array's data) be checked too.
"""
import io
import math
import operator
import pickle
from typing import Any, Callable, Optional

import numpy as np

MIN_BUDGET = 256 << 20
BUDGET_FACTOR = 8
_SCALARS = (str, bytes, int, float, complex, bool)


class PickleLoadError(pickle.UnpicklingError):
    """The file is not a loadable plain-data pickle (the message names the file)."""


class UnsafePickleError(PickleLoadError):
    """The pickle asks for a global or a dtype outside the allowed plain data types."""


def _nbytes(shape: Any, dtype: Any) -> int:
    """Bytes an array of ``shape`` and ``dtype`` takes; refuses object and bad dtypes."""
    dtype = _checked_dtype(np.dtype(dtype))
    dims = (shape,) if not isinstance(shape, (tuple, list)) else shape
    sizes = [operator.index(d) for d in dims]
    if any(d < 0 for d in sizes):
        raise ValueError(f"negative dimension in shape {tuple(sizes)}")
    return math.prod(sizes) * dtype.itemsize


def _checked_dtype(dtype: np.dtype) -> np.dtype:
    if dtype.hasobject:
        raise UnsafePickleError(f"refusing dtype {dtype}: object arrays are not plain data")
    return dtype


def _length(obj: Any) -> int:
    try:
        return len(obj)
    except TypeError:
        return 0


def _cost_bytes(*args: Any) -> int:
    if not args or isinstance(args[0], (str, bytes, list, tuple)):
        return _length(args[0]) if args else 0
    return operator.index(args[0])  # bytes(n): n zero bytes


def _cost_str(*args: Any) -> int:
    if args and not isinstance(args[0], _SCALARS):
        raise UnsafePickleError(f"refusing str() of a {type(args[0]).__name__}: only of strings and numbers")
    return 4 * _length(args[0]) if args else 0


def _cost_container(*args: Any) -> int:
    return 64 + 16 * _length(args[0]) if args else 64


def _cost_ndarray(shape: Any, dtype: Any = float, buffer: Any = None, *rest: Any) -> int:
    size = _nbytes(shape, dtype)
    return 0 if buffer is not None else size


def _cost_reconstruct(subtype: Any, shape: Any, dtype: Any) -> int:
    if subtype is not np.ndarray:
        raise UnsafePickleError(f"refusing to rebuild an array of type {subtype!r}")
    return _nbytes(shape, dtype)


def _cost_scalar(dtype: Any, *rest: Any) -> int:
    return _checked_dtype(np.dtype(dtype)).itemsize


def _cost_frombuffer(buf: Any, dtype: Any, *rest: Any) -> int:
    _checked_dtype(np.dtype(dtype))
    return 0


def _cost_encode(obj: Any = "", *rest: Any) -> int:
    return 4 * _length(obj)


def _cost_none(*args: Any) -> int:
    return 0


def _checked_dtype_call(*args: Any) -> np.dtype:
    return _checked_dtype(np.dtype(*args))


_CONTAINERS = ("dict", "list", "tuple", "set", "frozenset")
# (module, name) -> (how to charge a call before it runs, what to call instead of the global or None)
_ALLOWED = {
    ("collections", "OrderedDict"): (_cost_container, None),
    **{("builtins", name): (_cost_container, None) for name in _CONTAINERS},
    ("builtins", "str"): (_cost_str, None),
    ("builtins", "bytes"): (_cost_bytes, None),
    ("builtins", "int"): (_cost_none, None),
    ("builtins", "float"): (_cost_none, None),
    ("builtins", "complex"): (_cost_none, None),
    ("builtins", "bool"): (_cost_none, None),
    ("numpy", "ndarray"): (_cost_ndarray, None),
    ("numpy", "dtype"): (_cost_none, _checked_dtype_call),
    ("_codecs", "encode"): (_cost_encode, None),
}
for _core in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_core}.multiarray", "_reconstruct")] = (_cost_reconstruct, None)
    _ALLOWED[(f"{_core}.multiarray", "scalar")] = (_cost_scalar, None)
    _ALLOWED[(f"{_core}.numeric", "_frombuffer")] = (_cost_frombuffer, None)


class _RestrictedUnpickler(pickle._Unpickler):
    """Resolves only allowed globals, to wrappers that charge each call against a byte budget."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, data: bytes, max_bytes: int) -> None:
        super().__init__(io.BytesIO(data), encoding="latin1")
        self.budget = max_bytes
        self.spent = 0

    def charge(self, nbytes: int, what: str) -> None:
        """Count ``nbytes`` against the budget; PickleLoadError once it is exceeded."""
        self.spent += nbytes
        if self.spent > self.budget:
            raise PickleLoadError(
                f"{what} asks for {nbytes} bytes; this pickle may allocate at most {self.budget} bytes in all"
            )

    def find_class(self, module: str, name: str) -> Callable:
        if (module, name) not in _ALLOWED:
            raise UnsafePickleError(f"refusing to load '{module}.{name}': only plain data is allowed")
        cost, replacement = _ALLOWED[(module, name)]
        target = replacement or super().find_class(module, name)

        def guarded(*args: Any) -> Any:
            args = tuple(getattr(a, "allowed_global", a) for a in args)  # e.g. _reconstruct(ndarray, ...)
            self.charge(cost(*args), f"{module}.{name}()")
            return target(*args)

        guarded.allowed_global = target
        return guarded

    def load_build(self) -> None:
        """BUILD on an array copies its data: charge it (and check the dtype) first."""
        state, inst = self.stack[-1], self.stack[-2]
        if isinstance(inst, np.ndarray) and isinstance(state, tuple) and len(state) == 5:
            _, shape, dtype, _, data = state
            size = _nbytes(shape, dtype)
            self.charge(size if not isinstance(data, (bytes, bytearray)) else len(data), "array state")
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build


def load_pickle(path: str, max_bytes: Optional[int] = None) -> Any:
    """Load plain data (numpy arrays, dicts, lists, strings, numbers) from a pickle file.

    ``max_bytes`` caps what the pickle's calls may allocate in all (default: the larger of
    MIN_BUDGET and BUDGET_FACTOR times the file size). Raises OSError if the file cannot be
    read, UnsafePickleError for a forbidden global or dtype and PickleLoadError for any other
    failure, each naming the file.
    """
    with open(path, "rb") as f:
        data = f.read()
    budget = max_bytes if max_bytes is not None else max(MIN_BUDGET, BUDGET_FACTOR * len(data))
    try:
        return _RestrictedUnpickler(data, budget).load()
    except UnsafePickleError as err:
        raise UnsafePickleError(f"{path}: {err}") from None
    except PickleLoadError as err:
        raise PickleLoadError(f"{path}: {err}") from None
    except Exception as err:  # malformed data: ValueError, TypeError, MemoryError, ...
        raise PickleLoadError(f"{path}: not a loadable plain-data pickle: {type(err).__name__}: {err}") from None
