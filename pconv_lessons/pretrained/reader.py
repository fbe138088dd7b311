"""Reading a ``torch.save`` file that came from the internet: its tensors and plain values, and nothing it can use
to change this process.

A pickle is a program: GLOBAL names an object, REDUCE / NEWOBJ call it, BUILD / SETITEM(S) / APPEND(S) change an
object on the stack, and torch's loader adds its own effects (storage allocation, the legacy format's source
patches). The reader allows, by construction:

1. **what the pickle can name.** Before anything runs, every opcode is checked in a pass that executes nothing
   (``verify_pickle``). A GLOBAL either names one of torch's inert tensor pieces (``TORCH_GLOBALS``: three tensor
   rebuilders, the storage types, dtypes, ``OrderedDict``, ``torch.Size``, ``torch.device``, ``set``, ``complex``)
   or is *foreign* and is replaced by an inert stand-in of our own (``StandIn``; Lightning and OmegaConf classes,
   ``typing.Any``, ``builtins.dict``, …). Any other torch global (``bytearray``, ``_codecs.encode``,
   ``torch.Tensor``, the untyped storages: callables whose result a tiny file can make huge) is refused, and so
   are REDUCE / NEWOBJ on anything but a named global, BUILD on a named global, and tuples nested more than
   ``MAX_TUPLE_DEPTH`` deep (hashing a key nested 10⁶ deep overflows the C stack: the process dies).
2. **what the opcodes do.** The pickle then runs on torch's own ``weights_only`` unpickler, with the stand-ins
   allowlisted under the foreign names (``torch.serialization.safe_globals``). It refuses BUILD on everything but
   a Tensor, Parameter, OrderedDict or stand-in *instance* made by the file itself, SETITEM(S) on anything but a
   dict, APPEND(S) on anything but a list, and persistent ids other than storages. So no opcode can reach a real
   class or function: BUILD on a stand-in only stores its state in that fresh instance.
3. **what storage costs.** Storages are ours, not torch.load's: each is the exact bytes of its zip member (whose
   size the central directory gives, ``pconv_lessons.torch_archive`` having checked every member is stored and
   inside the file) or of its record in the legacy (pre-1.6) format, whose declared sizes must fit in the file
   before anything is allocated. They cannot grow: a tensor that asks for more than its storage is an error, not
   an allocation. (A view may still *claim* many elements with stride 0; callers compare shapes to the model
   before computing anything on a tensor.)

Every failure is a ``PretrainedFileError`` naming the file and what is wrong.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch
from torch._utils import IMPORT_MAPPING, NAME_MAPPING
from torch._weights_only_unpickler import Unpickler, _get_allowed_globals, _get_user_allowed_globals
from torch.serialization import MAGIC_NUMBER, PROTOCOL_VERSION, StorageType

from pconv_lessons.pretrained.common import PretrainedFileError, describe
from pconv_lessons.torch_archive import check_torch_archive

# ------------------------------------------------------------------------------------ what a file may name

_TORCH_NAMED = ("torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
                "torch._utils._rebuild_parameter_with_state", "collections.OrderedDict", "torch.Size",
                "torch.device", "builtins.set", "builtins.complex")
TORCH_GLOBALS: frozenset[str] = frozenset(
    name for name, value in _get_allowed_globals().items()
    if name in _TORCH_NAMED or isinstance(value, (StorageType, torch.dtype))
)
# names torch's unpickler resolves to its own objects: a stand-in cannot take their place, so they are refused
TORCH_DEFAULTS: frozenset[str] = frozenset(_get_allowed_globals())


class StandIn:
    """An inert stand-in for a foreign class or function that a file names (``FOREIGN`` is that name).

    Called (REDUCE), created (NEWOBJ) or built (BUILD) by the pickle, it only keeps what it was given in its own
    two slots, ``args`` and ``state``; it has no other attribute, runs nothing, and is never pickled again.
    """

    __slots__ = ("args", "state")
    FOREIGN = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> StandIn:
        instance = super().__new__(cls)
        instance.args, instance.state = args, None
        return instance

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __reduce__(self) -> Any:
        raise TypeError(f"a stand-in for {self.FOREIGN} is not pickled again")

    def __repr__(self) -> str:
        return f"<stand-in for {self.FOREIGN}>"


def _plain_dict(*args: Any) -> dict:
    """Stand-in for ``collections.defaultdict``: a plain empty dict (the default factory is dropped), so the items
    pickled after it (OmegaConf's resolver cache) can be set on it."""
    return {}


def stand_in(name: str) -> Callable:
    """The stand-in allowlisted under the foreign global ``name``: a fresh ``StandIn`` subclass, or ``_plain_dict``
    for ``collections.defaultdict``."""
    if name == "collections.defaultdict":
        return _plain_dict
    short = name.rpartition(".")[2] or "global"
    return type(short, (StandIn,), {"__slots__": (), "FOREIGN": name, "__qualname__": f"StandIn[{name}]"})


# ------------------------------------------------------------------------------------ checking the opcodes

_PUSH_VALUE = {"NONE", "NEWTRUE", "NEWFALSE", "EMPTY_TUPLE", "EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "BININT",
               "BININT1", "BININT2", "LONG1", "BINFLOAT", "BINUNICODE", "SHORT_BINSTRING"}
_GLOBAL = object()  # a named global on the verifier's stack; any other value is held as its tuple depth (an int)
MAX_TUPLE_DEPTH = 100  # Python hashes nested tuples recursively without a guard: 10⁶ levels crash the process


def global_name(arg: str) -> str:
    """``"module name"`` of a GLOBAL opcode as torch's unpickler resolves it (Python 2 names mapped)."""
    module, _, name = arg.partition(" ")
    if (module, name) in NAME_MAPPING:
        module, name = NAME_MAPPING[(module, name)]
    elif module in IMPORT_MAPPING:
        module = IMPORT_MAPPING[module]
    return f"{module}.{name}"


def verify_pickle(stream: IO[bytes], source: str) -> set[str]:
    """The foreign globals of the pickle at ``stream``'s position (the stream is left after its STOP), after
    checking every opcode without running any: only the opcodes torch's weights_only unpickler knows, GLOBAL of
    ASCII names that are in ``TORCH_GLOBALS`` or foreign, REDUCE / NEWOBJ only on a named global, BUILD never on
    one, tuples nested at most ``MAX_TUPLE_DEPTH`` deep. ``source`` names the file (and member) in the error."""
    stack: list[object] = []
    marks: list[list[object]] = []
    memo: dict[int, object] = {}
    foreign: set[str] = set()

    def refuse(reason: str) -> PretrainedFileError:
        return PretrainedFileError(f"{source} is refused: {reason}; a released-weights file holds tensors and "
                                   "plain values only")

    def pop(count: int = 1) -> list[object]:
        if len(stack) < count:
            raise refuse("its pickle takes from an empty stack")
        taken = stack[len(stack) - count:]
        del stack[len(stack) - count:]
        return taken

    def pop_mark() -> list[object]:
        nonlocal stack
        if not marks:
            raise refuse("its pickle closes a MARK it never opened")
        items, stack = stack, marks.pop()
        return items

    def push_tuple(items: list[object], position: int) -> None:
        depth = 1 + max((item for item in items if item is not _GLOBAL), default=0)
        if depth > MAX_TUPLE_DEPTH:
            raise refuse(f"it nests tuples {depth} deep (byte {position}); at most {MAX_TUPLE_DEPTH}")
        stack.append(depth)

    try:
        for opcode, arg, position in pickletools.genops(stream):
            name = opcode.name
            if name == "GLOBAL":
                if not arg.isascii():
                    raise refuse(f"GLOBAL at byte {position} is not an ASCII name")
                full = global_name(arg)
                if full in TORCH_DEFAULTS and full not in TORCH_GLOBALS:
                    raise refuse(f"it names {describe(full)} (byte {position}), which is not one of torch's tensor "
                                 "pieces this reader allows")
                if full not in TORCH_DEFAULTS:
                    foreign.add(full)
                stack.append(_GLOBAL)
            elif name in ("REDUCE", "NEWOBJ"):
                callee, _ = pop(2)  # REDUCE: callable, args; NEWOBJ: class, args
                if callee is not _GLOBAL:
                    raise refuse(f"{name} at byte {position} calls something other than a named global")
                stack.append(0)
            elif name == "BUILD":
                pop()
                if not stack or stack[-1] is _GLOBAL:
                    raise refuse(f"BUILD at byte {position} would change a named global or nothing")
            elif name in _PUSH_VALUE:
                stack.append(1 if name == "EMPTY_TUPLE" else 0)
            elif name == "MARK":
                marks.append(stack)
                stack = []
            elif name in ("TUPLE", "APPENDS", "SETITEMS"):
                items = pop_mark()
                if name == "TUPLE":
                    push_tuple(items, position)
                elif not stack:
                    raise refuse(f"{name} at byte {position} has no container")
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                push_tuple(pop(int(name[-1])), position)
            elif name in ("APPEND", "SETITEM"):
                pop(1 if name == "APPEND" else 2)
                if not stack:
                    raise refuse(f"{name} at byte {position} has no container")
            elif name == "BINPERSID":
                pop()
                stack.append(0)
            elif name in ("BINPUT", "LONG_BINPUT"):
                if not stack:
                    raise refuse(f"{name} at byte {position} memoizes nothing")
                memo[arg] = stack[-1]
            elif name in ("BINGET", "LONG_BINGET"):
                if arg not in memo:
                    raise refuse(f"{name} at byte {position} reads memo {arg}, never written")
                stack.append(memo[arg])
            elif name == "STOP":
                if len(stack) != 1 or marks:
                    raise refuse("its pickle does not end with exactly one object")
            elif name != "PROTO":
                raise refuse(f"opcode {name} (byte {position}) is not one torch.save writes")
    except PretrainedFileError:
        raise
    except Exception as error:  # a truncated or garbled pickle
        raise PretrainedFileError(f"{source} is not a readable PyTorch file: its pickle is damaged "
                                  f"({type(error).__name__}); it may be incomplete: download it again") from None
    return foreign


def run_pickle(stream: IO[bytes], foreign: set[str], persistent_load: Callable[[tuple], Any], source: str) -> Any:
    """The pickle at ``stream`` run by torch's weights_only unpickler, each foreign global a fresh stand-in. A
    foreign name that this process has allowlisted itself (``add_safe_globals``) is refused: which of two
    allowlisted objects of one name torch picks is not defined."""
    taken = foreign & set(_get_user_allowed_globals())
    if taken:
        raise PretrainedFileError(f"{source} names {', '.join(sorted(taken))[:200]}, which this process allowlisted "
                                  "with torch.serialization.add_safe_globals: the reader will not use a real class")
    unpickler = Unpickler(stream, encoding="utf-8")
    unpickler.persistent_load = persistent_load
    with torch.serialization.safe_globals([(stand_in(name), name) for name in sorted(foreign)]):
        try:
            return unpickler.load()
        except pickle.UnpicklingError as error:
            raise PretrainedFileError(f"{source} is refused by torch's weights_only unpickler: "
                                      f"{str(error)[:300]}") from None


def load_pickle(stream: IO[bytes], source: str, persistent_load: Callable[[tuple], Any] | None = None) -> Any:
    """``verify_pickle`` then ``run_pickle`` on the pickle at the stream's position (which must be seekable)."""
    start = stream.tell()
    foreign = verify_pickle(stream, source)
    stream.seek(start)
    return run_pickle(stream, foreign, persistent_load or _no_storages(source), source)


def _no_storages(source: str) -> Callable[[tuple], Any]:
    def refuse(pid: tuple) -> Any:
        raise PretrainedFileError(f"{source}: a storage where none belongs")
    return refuse


# ------------------------------------------------------------------------------------ storages


def _storage(buffer: bytearray, dtype: torch.dtype) -> torch.storage.TypedStorage:
    """A storage over ``buffer`` that cannot grow (it does not own its memory)."""
    untyped = torch.frombuffer(buffer or bytearray(1), dtype=torch.uint8).untyped_storage()
    if not buffer:
        untyped = untyped[0:0]
    return torch.storage.TypedStorage(wrap_storage=untyped, dtype=dtype, _internal=True)


def _storage_fields(pid: tuple, count: int, source: str) -> tuple[torch.dtype, int, int]:
    """``(dtype, element size, number of elements)`` of a persistent id ``('storage', type, key, location, numel
    [, view])``, checked."""
    if type(pid) is not tuple or len(pid) != count:
        raise PretrainedFileError(f"{source}: a storage id of {describe(pid)}, expected a tuple of {count}")
    storage_type, numel = pid[1], pid[4]
    if not isinstance(storage_type, StorageType):
        raise PretrainedFileError(f"{source}: a storage of type {describe(storage_type)}")
    if type(numel) is not int or numel < 0:
        raise PretrainedFileError(f"{source}: a storage of {describe(numel)} elements")
    dtype = storage_type.dtype
    return dtype, torch._utils._element_size(dtype), numel


def read_zip(path: Path) -> Any:
    """The object in a ``torch.save`` zip archive (PyTorch ≥ 1.6)."""
    check_torch_archive(path, "pretrained file")
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("data.pkl") and name.count("/") == 1]
        if len(pickles) != 1:
            raise PretrainedFileError(f"{path} is not a torch.save archive: it has {len(pickles)} '<name>/data.pkl'")
        prefix = pickles[0][: -len("data.pkl")]
        if f"{prefix}byteorder" in archive.namelist() and archive.read(f"{prefix}byteorder") != b"little":
            raise PretrainedFileError(f"{path}: member {prefix}byteorder is not 'little'; only little-endian files load")
        storages: dict[str, torch.storage.TypedStorage] = {}

        def load_storage(pid: tuple) -> torch.storage.TypedStorage:
            dtype, element_size, numel = _storage_fields(pid, 5, f"{path}: {pickles[0]}")
            key = pid[2]
            if not (isinstance(key, str) and key.isdigit() and len(key) <= 20):
                raise PretrainedFileError(f"{path}: a storage key {describe(key)}, expected digits")
            member = f"{prefix}data/{key}"
            if key not in storages:
                try:
                    info = archive.getinfo(member)
                except KeyError:
                    raise PretrainedFileError(f"{path}: no member {member} for a storage its pickle names") from None
                if info.file_size != numel * element_size:
                    raise PretrainedFileError(f"{path}: member {member} holds {info.file_size} bytes, its storage "
                                              f"declares {numel} × {element_size}")
                buffer = bytearray(info.file_size)
                with archive.open(info) as stream:
                    stream.readinto(buffer)
                storages[key] = _storage(buffer, dtype)
            return storages[key]

        with archive.open(pickles[0]) as stream:
            data = io.BytesIO(stream.read())
        return load_pickle(data, f"{path}: member {pickles[0]}", load_storage)


def read_legacy(path: Path) -> Any:
    """The object in a file of torch's format before 1.6: pickles of the magic number, the protocol version and
    the system info, the object (its storages as persistent ids), the list of storage keys, then each storage's
    data as an 8-byte little-endian element count and the raw bytes, in that list's order."""
    size = path.stat().st_size
    source = f"{path} (PyTorch's pre-1.6 format)"
    with open(path, "rb") as file:
        stream = BoundedReader(file, size)
        if load_pickle(stream, source) != MAGIC_NUMBER:
            raise PretrainedFileError(f"{path} is not a readable PyTorch file: no torch.save magic number")
        if load_pickle(stream, source) != PROTOCOL_VERSION:
            raise PretrainedFileError(f"{source}: protocol version is not {PROTOCOL_VERSION}")
        info = load_pickle(stream, source)
        if not isinstance(info, dict) or info.get("little_endian") is not True:
            raise PretrainedFileError(f"{source}: not written on a little-endian machine")
        buffers: dict[str, tuple[bytearray, int]] = {}  # key → (its bytes, its element size)
        storages: dict[str, torch.storage.TypedStorage] = {}
        declared = 0

        def load_storage(pid: tuple) -> torch.storage.TypedStorage:
            nonlocal declared
            dtype, element_size, numel = _storage_fields(pid, 6, source)
            root, view = pid[2], pid[5]
            if not isinstance(root, str):
                raise PretrainedFileError(f"{source}: a storage key {describe(root)}")
            if root not in storages:
                declared += numel * element_size
                if declared > size:
                    raise PretrainedFileError(f"{source}: its storages declare {declared} bytes, more than the "
                                              f"file's {size}")
                buffers[root] = bytearray(numel * element_size), element_size
                storages[root] = _storage(buffers[root][0], dtype)
            if view is None:
                return storages[root]
            return _legacy_view(storages[root], view, element_size, source)

        result = load_pickle(stream, source, load_storage)
        keys = load_pickle(stream, source)
        if not (isinstance(keys, list) and all(isinstance(key, str) for key in keys) and sorted(keys) == sorted(storages)):
            raise PretrainedFileError(f"{source}: its storage list does not match the storages its object uses")
        for key in keys:
            _read_record(stream, *buffers[key], f"{source}: storage {key}")
    return result


def _legacy_view(root: torch.storage.TypedStorage, view: Any, element_size: int, source: str
                 ) -> torch.storage.TypedStorage:
    if type(view) is not tuple or len(view) != 3 or not all(type(v) is int and v >= 0 for v in view[1:]):
        raise PretrainedFileError(f"{source}: a storage view {describe(view)}")
    _, offset, length = view
    if (offset + length) * element_size > root.nbytes():
        raise PretrainedFileError(f"{source}: a storage view past the end of its storage")
    untyped = root._untyped_storage[offset * element_size: (offset + length) * element_size]
    return torch.storage.TypedStorage(wrap_storage=untyped, dtype=root.dtype, _internal=True)


class BoundedReader:
    """A file read no further than ``size`` bytes: ``read(n)`` never asks for more than is left, so a length
    field of 4 GiB in a 1 kB file does not make a 4 GiB buffer."""

    def __init__(self, file: IO[bytes], size: int) -> None:
        self.file, self.size = file, size

    def read(self, count: int = -1) -> bytes:
        left = max(self.size - self.file.tell(), 0)
        return self.file.read(left if count < 0 else min(count, left))

    def readline(self) -> bytes:
        return self.file.readline()

    def readinto(self, buffer: bytearray) -> int:
        return self.file.readinto(buffer)

    def tell(self) -> int:
        return self.file.tell()

    def seek(self, position: int) -> int:
        return self.file.seek(position)


def _read_record(stream: IO[bytes], buffer: bytearray, element_size: int, source: str) -> None:
    header = stream.read(8)
    if len(header) != 8 or struct.unpack("<q", header)[0] * element_size != len(buffer):
        raise PretrainedFileError(f"{source}: its record does not hold the {len(buffer)} bytes its id declares")
    if stream.readinto(buffer) != len(buffer):
        raise PretrainedFileError(f"{source}: the file ends inside it; it may be incomplete: download it again")


def read_tensors(path: Path) -> Any:
    """The object stored in a ``torch.save`` file (zip or pre-1.6 format), read by the rules above: tensors,
    plain values and inert stand-ins; nothing in the file runs or changes this process."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(512)
        if head[:4] == b"PK\x03\x04":
            return read_zip(path)
        if head[257:262] == b"ustar":
            raise PretrainedFileError(f"{path} is in torch's tar format (before 0.4), which this reader refuses")
        return read_legacy(path)
    except PretrainedFileError:
        raise
    except Exception as error:  # a damaged archive, an empty file, a refusal by torch's unpickler, …
        raise unreadable(path, error) from None


def unreadable(path: Path, error: Exception) -> PretrainedFileError:
    message = str(error)
    message = message if len(message) <= 300 else message[:300] + " …"
    return PretrainedFileError(
        f"{path} is not a readable PyTorch file ({type(error).__name__}: {message}); "
        "it may be incomplete: download it again"
    )
