"""Read the tensors of a TorchScript archive (``torch.jit.save``) without running its code.

OpenAI's CLIP release files (``ViT-B-16.pt``, ``ViT-L-14.pt``) are TorchScript archives: a zip
with ``<root>/data.pkl`` (a pickle of the module tree), ``<root>/data/<key>`` (the raw bytes of
each tensor storage), ``<root>/code/`` (the TorchScript source) and ``<root>/constants.pkl``.
``torch.load(weights_only=True)`` refuses them and ``torch.jit.load`` compiles and runs their
code, so this module rebuilds the weights itself: a restricted unpickler reads ``data.pkl`` and
allows only

- ``torch._utils._rebuild_tensor_v2`` (served by our own function that slices a storage),
- ``torch.<Dtype>Storage`` (mapped to a dtype), ``collections.OrderedDict``,
- the list builders of ``torch.jit._pickle`` (plain lists),
- classes of the ``__torch__`` namespace, which become inert records of their attributes.

Any other global is refused with an :class:`ArchiveError`, so no pickled callable runs. Storage
bytes are read from the zip records (little-endian archives only). :func:`read_archive_state`
returns the parameters and buffers of the module tree under their dotted paths, as
``torch.jit.load(path).state_dict()`` does: which tensor attributes are parameters or buffers is
read from the ``__parameters__`` / ``__buffers__`` lines of the archive's code files, parsed as
text.
"""
import io
import pickle
import re
import zipfile
from collections import OrderedDict
from typing import Any, Dict, List, Tuple

import torch

# dtype of each legacy typed-storage class name found in TorchScript pickles.
_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64, "FloatStorage": torch.float32, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}
_CLASS_STATE = re.compile(
    r"^class (\w+)\(Module\):\n  __parameters__ = \[([^\]]*)\]\n  __buffers__ = \[([^\]]*)\]", re.MULTILINE)
_QUOTED = re.compile(r'"([^"]+)"')
_LIST_BUILDERS = ("build_intlist", "build_doublelist", "build_boollist", "build_tensorlist")


class ArchiveError(ValueError):
    """A file that is not a readable TorchScript archive; the message names the file and why."""


class ScriptObject:
    """An inert stand-in for a pickled TorchScript object: it only keeps its attribute dict."""

    type_name = "?"

    def __setstate__(self, state: Any) -> None:
        self.attributes = state if isinstance(state, dict) else {}


def is_torchscript_archive(path: str) -> bool:
    """True when ``path`` is a zip holding TorchScript code (``<root>/code/`` or constants)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(_strip_root(n).startswith("code/") or _strip_root(n) == "constants.pkl"
                   for n in archive.namelist())


def _strip_root(name: str) -> str:
    return name.split("/", 1)[1] if "/" in name else name


def _dtype_of(storage_type: Any, path: str) -> torch.dtype:
    if isinstance(storage_type, torch.dtype):
        return storage_type
    raise ArchiveError(f"{path}: unknown storage type {storage_type!r}")


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler of ``data.pkl`` that allows only the globals listed in the module docstring."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, root: str, path: str) -> None:
        super().__init__(io.BytesIO(data))
        self.archive, self.root, self.path = archive, root, path
        self.storages: Dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch.jit._pickle" and name in _LIST_BUILDERS:
            return list
        if module == "torch.jit._pickle" and name == "restore_type_tag":
            return _restore_type_tag
        if module == "__torch__" or module.startswith("__torch__."):
            return type(name, (ScriptObject,), {"type_name": f"{module}.{name}"})
        raise ArchiveError(f"{self.path}: data.pkl refers to {module}.{name}, which this reader does not allow")

    def persistent_load(self, pid: Tuple) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise ArchiveError(f"{self.path}: unsupported persistent record {pid!r:.80}")
        _, storage_type, key, _location, numel = pid
        dtype = _dtype_of(storage_type, self.path)
        if key not in self.storages:
            record = f"{self.root}/data/{key}"
            try:
                raw = bytearray(self.archive.read(record))
            except KeyError:
                raise ArchiveError(f"{self.path}: storage record {record} is missing") from None
            itemsize = torch.empty(0, dtype=dtype).element_size()
            if len(raw) != numel * itemsize:
                raise ArchiveError(
                    f"{self.path}: storage {record} has {len(raw)} bytes, expected {numel} x {itemsize}")
            self.storages[key] = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        return self.storages[key]


def _rebuild_tensor(storage: torch.Tensor, offset: int, size, stride, requires_grad=False,
                    hooks=None, *metadata) -> torch.Tensor:
    """A tensor of ``size``/``stride`` viewing the 1-D ``storage`` from ``offset`` (copied)."""
    if len(size) and storage.numel() == 0:
        raise ArchiveError("tensor refers to an empty storage")
    return torch.as_strided(storage, tuple(size), tuple(stride), offset).clone()


def _restore_type_tag(value: Any, type_str: str) -> Any:
    return value


def _root_of(names: List[str], path: str) -> str:
    roots = sorted({n.split("/", 1)[0] for n in names if n.endswith("/data.pkl") and n.count("/") == 1})
    if len(roots) != 1:
        raise ArchiveError(f"{path}: expected one <root>/data.pkl record, found {len(roots)}")
    return roots[0]


def _state_names(archive: zipfile.ZipFile, root: str) -> Dict[str, set]:
    """Parameter and buffer names per TorchScript class, read (as text, never run) from the
    ``__parameters__`` / ``__buffers__`` lines of the archive's code files."""
    table: Dict[str, set] = {}
    for name in archive.namelist():
        if not (name.startswith(f"{root}/code/") and name.endswith(".py")):
            continue
        module = name[len(f"{root}/code/"): -len(".py")].replace("/", ".")
        for cls, params, buffers in _CLASS_STATE.findall(archive.read(name).decode("utf-8", "replace")):
            table[f"{module}.{cls}"] = set(_QUOTED.findall(params)) | set(_QUOTED.findall(buffers))
    return table


def _collect(obj: Any, prefix: str, names: Dict[str, set], out: "OrderedDict[str, torch.Tensor]") -> None:
    """Parameters and buffers of ``obj``'s module tree under dotted names (every tensor
    attribute of a class whose code declares none)."""
    if isinstance(obj, torch.Tensor):
        out[prefix.rstrip(".")] = obj
    elif isinstance(obj, ScriptObject):
        declared = names.get(obj.type_name)
        for name, value in getattr(obj, "attributes", {}).items():
            if isinstance(value, torch.Tensor) and declared is not None and name not in declared:
                continue
            _collect(value, f"{prefix}{name}.", names, out)


def read_archive_state(path: str) -> "OrderedDict[str, torch.Tensor]":
    """The parameters and buffers of the TorchScript archive ``path`` by dotted path, as
    ``torch.jit.load(path).state_dict()`` names them.

    Raises ArchiveError naming the file for a non-zip file, a missing record, a global outside
    the allow-list or a big-endian archive.
    """
    if not zipfile.is_zipfile(path):
        raise ArchiveError(f"{path}: not a zip archive")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        root = _root_of(names, path)
        byteorder = f"{root}/byteorder"
        if byteorder in names and archive.read(byteorder).strip() not in (b"little", b""):
            raise ArchiveError(f"{path}: big-endian archives are not supported")
        unpickler = _RestrictedUnpickler(archive.read(f"{root}/data.pkl"), archive, root, path)
        names = _state_names(archive, root)
        try:
            tree = unpickler.load()
        except ArchiveError:
            raise
        except Exception as err:  # malformed pickle streams raise many types
            raise ArchiveError(f"{path}: cannot read data.pkl: {err}") from None
    state: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    _collect(tree, "", names, state)
    if not state:
        raise ArchiveError(f"{path}: the archive holds no tensors")
    return state
