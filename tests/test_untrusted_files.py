"""Files from the internet cannot change the process or cost more than their size (issue 19, parts 1 and 2).

Every attack file is written here by hand, opcode by opcode (pickle protocol 2, as torch.save writes it), in
torch's zip layout and in its pre-1.6 ("legacy") layout. Each test loads it the way a user would
(``load_pretrained``, or the trainer's ``load_checkpoint``), expects a clear refusal or an inert result, then checks
that the process is unchanged: the tensor rebuilders' and storage classes' attributes, ``nn.Module.dump_patches``,
torch's allowlist, no file written under the test's folder (the working directory, the file's folder, the temporary
directory and ``../`` all lie in it), and a ``torch.save`` / ``torch.load`` round trip that still gives the right
values. The size attacks also check that the refusal is fast and small (wall time, Python heap peak, peak RSS).
"""

from __future__ import annotations

import bz2
import collections
import pickle
import resource
import struct
import tempfile
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest
import torch

from pconv_lessons.pretrained import PretrainedFileError, load_pretrained
from pconv_lessons.pretrained.reader import TORCH_GLOBALS, StandIn, read_tensors
from pconv_lessons.train import load_checkpoint

DATA = Path(__file__).parent / "data"
TINY_LAMA = DATA / "lama_tiny_best.ckpt"
FORMATS = pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])

# ------------------------------------------------------------------------------- pickles written by hand

PROTO, STOP, MARK, POP = b"\x80\x02", b".", b"(", b"0"
TUPLE, TUPLE1, TUPLE2 = b"t", b"\x85", b"\x86"
EMPTY_DICT, EMPTY_LIST, EMPTY_TUPLE, NONE, TRUE, FALSE = b"}", b"]", b")", b"N", b"\x88", b"\x89"
SETITEM, SETITEMS, APPEND, APPENDS, BUILD, REDUCE, NEWOBJ = b"s", b"u", b"a", b"e", b"b", b"R", b"\x81"
BINPERSID, INST, OBJ = b"Q", b"i", b"o"


def op_global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def op_named(full_name: str) -> bytes:
    module, _, name = full_name.rpartition(".")
    return op_global(module, name)


def op_str(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def op_int(value: int) -> bytes:
    if -(2**31) <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def op_value(value) -> bytes:
    """A plain value: None, bool, int, str, tuple, list or dict of them."""
    if value is None:
        return NONE
    if isinstance(value, bool):
        return TRUE if value else FALSE
    if isinstance(value, int):
        return op_int(value)
    if isinstance(value, str):
        return op_str(value)
    if isinstance(value, tuple):
        return MARK + b"".join(map(op_value, value)) + TUPLE
    if isinstance(value, list):
        return EMPTY_LIST + (MARK + b"".join(map(op_value, value)) + APPENDS if value else b"")
    return EMPTY_DICT + (MARK + b"".join(op_value(k) + v for k, v in
                                         ((k, op_value(v)) for k, v in value.items())) + SETITEMS if value else b"")


def op_dict(items: dict[str, bytes]) -> bytes:
    """A dict of str keys whose values are given as opcodes."""
    return EMPTY_DICT + MARK + b"".join(op_str(key) + value for key, value in items.items()) + SETITEMS


def op_tensor(key: str, numel: int, size: tuple, stride: tuple, legacy: bool, storage: str = "FloatStorage") -> bytes:
    """``_rebuild_tensor_v2(storage key, 0, size, stride, False, OrderedDict())`` with the storage as a persistent id."""
    pid = (MARK + op_str("storage") + op_global("torch", storage) + op_str(key) + op_str("cpu") + op_int(numel)
           + (NONE if legacy else b"") + TUPLE + BINPERSID)
    return (op_global("torch._utils", "_rebuild_tensor_v2") + MARK + pid + op_int(0) + op_value(tuple(size))
            + op_value(tuple(stride)) + FALSE + op_global("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE
            + TUPLE + REDUCE)


def write_file(path: Path, body: bytes, storages: dict[str, bytes], legacy: bool, extra_members: tuple = ()) -> Path:
    """``PROTO body STOP`` as torch writes a file: a zip archive (``archive/data.pkl`` + ``archive/data/<key>``), or
    the legacy layout (magic number, protocol, system info, the pickle, the storage keys, each storage's data as
    its 8-byte element count and bytes; float32 elements). ``extra_members``: more zip members, as ``raw_zip``
    takes them."""
    program = PROTO + body + STOP
    path.parent.mkdir(parents=True, exist_ok=True)
    if legacy:
        head = b"".join(pickle.dumps(value, protocol=2) for value in (
            torch.serialization.MAGIC_NUMBER, torch.serialization.PROTOCOL_VERSION,
            {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}))
        data = b"".join(struct.pack("<q", len(raw) // 4) + raw for raw in storages.values())
        path.write_bytes(head + program + pickle.dumps(list(storages), protocol=2) + data)
    else:
        members = [("archive/data.pkl", program), ("archive/byteorder", b"little"),
                   *((f"archive/data/{key}", raw) for key, raw in storages.items()), ("archive/version", b"3\n")]
        raw_zip(path, [stored(name, payload) for name, payload in members] + list(extra_members))
    return path


def stored(name: str, payload: bytes) -> tuple[str, int, bytes, int, int]:
    return name, zipfile.ZIP_STORED, payload, zlib.crc32(payload), len(payload)


def raw_zip(path: Path, members: list[tuple[str, int, bytes, int, int]]) -> Path:
    """A zip file written byte by byte: each member ``(name, method, payload as stored, CRC-32, size it declares
    once decompressed)``, its local header, then the central directory."""
    body, directory = bytearray(), bytearray()
    for name, method, payload, crc, size in members:
        offset, encoded = len(body), name.encode()
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(payload), size, len(encoded), 0)
        body += encoded + payload
        directory += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc, len(payload), size,
                                 len(encoded), 0, 0, 0, 0, 0, offset) + encoded
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(directory), len(body), 0)
    path.write_bytes(bytes(body + directory + end))
    return path


def deepfill_file(path: Path, extra: bytes, legacy: bool) -> Path:
    """A deepfillv2-shaped file ``{'G': {'conv1.conv.weight': tensor}, 'x': <extra>}``, its weight of shape
    (2, 5, 5, 5): not a multiple of 4, so ``load_pretrained`` refuses it once read, as the old reader did too."""
    weight = op_tensor("0", 2, (2, 5, 5, 5), (1, 0, 0, 0), legacy)
    body = op_dict({"G": op_dict({"conv1.conv.weight": weight}), "x": extra})
    return write_file(path, body, {"0": struct.pack("<2f", 1.0, 2.0)}, legacy)


# ------------------------------------------------------------------------------- the process, watched

REBUILDERS = sorted({value for name, value in vars(torch._utils).items() if name.startswith("_rebuild")}
                    | {torch._tensor._rebuild_from_type_v2}, key=lambda f: f.__name__)
CLASSES = [torch.UntypedStorage, torch.storage.TypedStorage, *torch._storage_classes, torch.nn.Module,
           torch.nn.Parameter, torch.Tensor, collections.OrderedDict, torch.Size, torch.serialization.StorageType]
STORAGE_TYPES = [value for value in torch._weights_only_unpickler._get_allowed_globals().values()
                 if isinstance(value, torch.serialization.StorageType)]
ATTACK_FILES = {"hostile.pth", "best.ckpt", "states_tf_places2.pth", "pconv.pth", "deep.pth", "last.pt"}  # in files/
FUNCTION_FIELDS = ("__defaults__", "__kwdefaults__", "__name__", "__qualname__", "__module__", "__code__")


def snapshot(folder: Path) -> dict:
    return {
        "functions": {f: ({k: getattr(f, k) for k in FUNCTION_FIELDS}, dict(f.__dict__)) for f in REBUILDERS},
        "classes": {cls: {**vars(cls), "__name__": cls.__name__, "__qualname__": cls.__qualname__} for cls in CLASSES},
        "storage types": [dict(vars(value)) for value in STORAGE_TYPES],
        "safe globals": set(torch.serialization.get_safe_globals()),
        "files": sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                        if p.parent != folder / "files" or p.name not in ATTACK_FILES),
    }


def differences(before: dict, after: dict) -> list[str]:
    found = []
    for f, (fields, attributes) in before["functions"].items():
        now_fields, now_attributes = after["functions"][f]
        found += [f"{fields['__name__']}.{k}" for k in FUNCTION_FIELDS if now_fields[k] is not fields[k]
                  and now_fields[k] != fields[k]]
        if now_attributes != attributes:
            found.append(f"{fields['__name__']}.__dict__")
    for cls, attributes in before["classes"].items():
        now = after["classes"][cls]
        found += [f"{attributes['__name__']}.{k}" for k in set(now) | set(attributes)
                  if now.get(k, None) is not attributes.get(k) and now.get(k, None) != attributes.get(k)
                  and k != "__slotnames__"]  # copyreg's cache
    if before["storage types"] != after["storage types"]:
        found.append("the legacy storage types")
    if before["safe globals"] != after["safe globals"]:
        found.append("torch's safe globals")
    if before["files"] != after["files"]:
        found.append(f"files: {sorted(set(after['files']) - set(before['files']))}")
    return found


def restore(before: dict) -> None:
    """Undo whatever an attack changed (so a failing test does not poison the next ones)."""
    for f, (fields, attributes) in before["functions"].items():
        for key in FUNCTION_FIELDS:
            setattr(f, key, fields[key])
        f.__dict__.clear()
        f.__dict__.update(attributes)
    for cls, attributes in before["classes"].items():
        for key in set(vars(cls)) - set(attributes):
            delattr(cls, key)
        for key, value in attributes.items():
            if getattr(cls, key) != value if key in ("__name__", "__qualname__") else vars(cls).get(key) is not value:
                setattr(cls, key, value)
    for value, attributes in zip(STORAGE_TYPES, before["storage types"]):
        vars(value).clear()
        vars(value).update(attributes)


def round_trip_is_right(folder: Path) -> bool:
    try:
        return _round_trip(folder)
    except Exception:
        return False


def _round_trip(folder: Path) -> bool:
    values = {"x": torch.tensor([1.0, -2.0, 3.0]), "p": torch.nn.Parameter(torch.ones(2)), "half": torch.arange(3).half()}
    for zipped in (True, False):
        path = folder / f"roundtrip_{zipped}.pt"
        try:
            torch.save(values, path, _use_new_zipfile_serialization=zipped)
            loaded = torch.load(path, weights_only=True)
        finally:
            path.unlink(missing_ok=True)
        if not all(torch.equal(loaded[k], v) and not loaded[k].is_neg() for k, v in values.items()):
            return False
    return True


@pytest.fixture
def watched(tmp_path, monkeypatch):
    """``(folder for the attack files, check)``: ``check()`` asserts that the process is as it was (the attack files,
    named in ``ATTACK_FILES``, are the only new files allowed), and the fixture undoes any change on exit."""
    files, cwd, temporary = tmp_path / "files", tmp_path / "cwd", tmp_path / "tmp"
    for folder in (files, cwd, temporary, tmp_path / "outside"):
        folder.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    state = {"before": snapshot(tmp_path)}

    def check() -> None:
        assert differences(state["before"], snapshot(tmp_path)) == []
        assert round_trip_is_right(temporary)

    yield files, check
    restore(state["before"])


def attempt(call) -> Exception | None:
    """The exception ``call()`` raises, or None: the tests check the process first, then the refusal."""
    try:
        call()
    except Exception as error:
        return error
    return None


def load_as_user(path: Path):
    """What a user does with a downloaded file: ``load_pretrained`` of its family (deepfillv2's layout here)."""
    return load_pretrained("deepfillv2", path)


# ------------------------------------------------------------------------------- part 1: the three attacks


@FORMATS
def test_build_on_a_rebuilder_cannot_negate_every_later_load(watched, legacy):
    files, unchanged = watched
    attack = (op_global("torch._utils", "_rebuild_tensor_v2") + NONE
              + op_dict({"__defaults__": op_value(({"neg": True},))}) + TUPLE2 + BUILD)
    error = attempt(lambda: load_as_user(deepfill_file(files / "hostile.pth", attack, legacy)))
    unchanged()
    assert isinstance(error, PretrainedFileError) and "hostile.pth" in str(error)


@FORMATS
@pytest.mark.parametrize("storage", ["torch.UntypedStorage", "torch.FloatStorage"])
def test_build_on_a_storage_class_cannot_break_torch_save(watched, legacy, storage):
    files, unchanged = watched
    attack = op_named(storage) + NONE + op_dict({"nbytes": op_int(5), "__reduce_ex__": NONE}) + TUPLE2 + BUILD
    error = attempt(lambda: load_as_user(deepfill_file(files / "hostile.pth", attack, legacy)))
    unchanged()
    assert isinstance(error, PretrainedFileError) and "hostile.pth" in str(error)


@pytest.mark.parametrize("target", ["absolute", "../"])
def test_a_legacy_module_id_writes_no_patch_file(watched, target):
    files, unchanged = watched
    name = str(files.parent / "outside" / "chosen") if target == "absolute" else "../escaped"
    rebuilder = op_global("torch._utils", "_rebuild_tensor_v2")
    poison = rebuilder + NONE + op_dict({"dump_patches": TRUE, "__name__": op_str(name)}) + TUPLE2 + BUILD + POP
    module_id = MARK + op_str("module") + rebuilder + op_str("x.py") + op_str("lines the file chose\n") + TUPLE
    attack = poison + module_id + BINPERSID
    error = attempt(lambda: load_as_user(deepfill_file(files / "hostile.pth", attack, legacy=True)))
    assert not (files.parent / "outside" / "chosen.patch").exists() and not (files.parent / "escaped.patch").exists()
    unchanged()
    assert isinstance(error, PretrainedFileError) and "hostile.pth" in str(error)


# ------------------------------------------------------------------------------- part 1: every reachable object

SLOT_STATE = op_dict({"__name__": op_str("evil"), "__defaults__": op_value(({"neg": True},)), "dump_patches": TRUE,
                      "nbytes": op_int(5), "__reduce_ex__": NONE, "__module__": op_str("os")})
CHANGES = {  # opcodes applied to the object on top of the stack
    "BUILD dict": op_dict({"dump_patches": TRUE, "__name__": op_str("evil")}) + BUILD,
    "BUILD slots": NONE + SLOT_STATE + TUPLE2 + BUILD,
    "SETITEM": op_str("__name__") + op_str("evil") + SETITEM,
    "SETITEMS": MARK + op_str("dump_patches") + TRUE + op_str("nbytes") + op_int(5) + SETITEMS,
    "APPEND": op_str("evil") + APPEND,
    "APPENDS": MARK + op_str("evil") + APPENDS,
}
NAMED = [*sorted(TORCH_GLOBALS),  # what the reader lets through, then names it replaces or refuses
         "torch.UntypedStorage", "torch.storage.UntypedStorage", "torch.storage.TypedStorage", "torch.Tensor",
         "builtins.bytearray", "omegaconf.dictconfig.DictConfig", "collections.defaultdict",
         "torch.nn.modules.module.Module", "builtins.dict", "builtins.getattr"]
MADE = {  # objects the file itself makes
    "stand-in instance": op_global("omegaconf.dictconfig", "DictConfig") + EMPTY_TUPLE + NEWOBJ,
    "stand-in class called": op_global("omegaconf.dictconfig", "DictConfig") + EMPTY_TUPLE + REDUCE,
    "OrderedDict": op_global("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE,
    "tensor": op_tensor("0", 2, (2,), (1,), legacy=False),
    "storage": (MARK + op_str("storage") + op_global("torch", "FloatStorage") + op_str("0") + op_str("cpu")
                + op_int(2) + TUPLE + BINPERSID),
    "torch.Size": op_global("torch", "Size") + op_value(((1, 2),)) + REDUCE,
    "defaultdict": op_global("collections", "defaultdict") + op_value((None,)) + REDUCE,
}


def test_no_opcode_changes_anything_a_file_can_reach(watched, tmp_path):
    """BUILD (dict and slot state), SETITEM(S) and APPEND(S) on every global a file can name and on every kind of
    object it can make: each file is refused or loaded inertly, and the process is unchanged after each."""
    files, unchanged = watched
    before, damage = snapshot(tmp_path), []
    targets = {**{name: op_named(name) for name in NAMED}, **MADE}
    for target, opcodes in targets.items():
        for change, change_opcodes in CHANGES.items():
            try:
                result = read_tensors(deepfill_file(files / "hostile.pth", opcodes + change_opcodes, legacy=False))
            except PretrainedFileError:
                pass
            else:  # BUILD on a stand-in keeps the state in its own slot, nothing else
                if isinstance(result["x"], StandIn) and (hasattr(result["x"], "__dict__")
                                                         or hasattr(result["x"], "dump_patches")):
                    damage.append(f"{change} on {target}: an attribute on the stand-in")
            found = differences(before, snapshot(tmp_path))
            if found:
                damage.append(f"{change} on {target}: {', '.join(found)}")
                restore(before)
    assert damage == []
    unchanged()


@FORMATS
def test_a_tensor_cannot_grow_its_storage(watched, legacy):
    files, unchanged = watched
    huge = op_tensor("0", 2, (10**6, 10**4), (10**4, 1), legacy=legacy)  # 4e10 bytes asked of an 8-byte storage
    refused_quickly(lambda: read_tensors(deepfill_file(files / "hostile.pth", huge, legacy=legacy)), "not resizable")
    unchanged()


CODE = "import torch; torch._utils._rebuild_tensor_v2.__defaults__ = ({'neg': True},); open('ran.txt', 'w')"


@pytest.mark.parametrize("call", ["REDUCE", "NEWOBJ", "INST", "OBJ"])
@pytest.mark.parametrize("callee", ["builtins.exec", "builtins.eval", "subprocess.call", "os.system",
                                    "builtins.getattr", "torch.load", "builtins.bytearray", "_codecs.encode"])
def test_a_call_of_anything_else_is_refused_or_inert(watched, callee, call):
    files, unchanged = watched
    module, _, name = callee.rpartition(".")
    args = op_value((CODE,))
    body = {"REDUCE": op_named(callee) + args + REDUCE, "NEWOBJ": op_named(callee) + args + NEWOBJ,
            "INST": MARK + op_str(CODE) + INST + f"{module}\n{name}\n".encode(),
            "OBJ": MARK + op_named(callee) + op_str(CODE) + OBJ}[call]
    try:
        result = read_tensors(deepfill_file(files / "hostile.pth", body, legacy=False))
    except PretrainedFileError:
        pass
    else:
        assert isinstance(result["x"], StandIn) and result["x"].FOREIGN == callee and result["x"].args == (CODE,)
    assert not Path("ran.txt").exists()
    unchanged()


@pytest.mark.parametrize("body", [
    op_global("builtins", "bytearray") + op_value((10**10,)) + REDUCE,  # torch allows bytearray(n): 10 GB
    op_global("torch", "Tensor") + op_value((10**5, 10**5)) + NEWOBJ,  # and torch.Tensor(n, m): 40 GB
    op_global("torch.storage", "UntypedStorage") + op_value((10**11,)) + REDUCE,
    op_global("_codecs", "encode") + op_value(("x" * 1000, "latin1")) + REDUCE,  # hex-encoding it n times: 2ⁿ
], ids=["bytearray", "Tensor", "UntypedStorage", "codecs"])
def test_torch_callables_whose_result_a_file_can_make_huge_are_refused_before_running(watched, body):
    files, unchanged = watched
    started = time.perf_counter()
    with pytest.raises(PretrainedFileError, match="hostile.pth.*refused: it names .* not one of torch's tensor pieces"):
        read_tensors(deepfill_file(files / "hostile.pth", body, legacy=False))
    assert time.perf_counter() - started < 1
    unchanged()


def test_a_process_allowlist_of_a_foreign_name_is_not_used(watched):
    files, unchanged = watched

    class Real:
        ran = False

        def __setstate__(self, state):
            Real.ran = True

    with torch.serialization.safe_globals([(Real, "omegaconf.dictconfig.DictConfig")]):
        with pytest.raises(PretrainedFileError, match="add_safe_globals"):
            read_tensors(deepfill_file(files / "hostile.pth", MADE["stand-in instance"] + EMPTY_DICT + BUILD,
                                       legacy=False))
    assert not Real.ran
    unchanged()


# ------------------------------------------------------------------------------- part 2: sizes

def refused_quickly(call, match: str) -> tuple[float, int, int]:
    """Run ``call``, which must raise ``PretrainedFileError``/``ValueError`` matching ``match``, in under a second
    with under 8 MiB of Python heap and under 200 MiB of new peak RSS; returns the three."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ValueError, match=match):
            call()
        seconds = time.perf_counter() - started
        heap = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024
    assert seconds < 1 and heap < 8 << 20 and rss < 200 << 20, (seconds, heap, rss)
    print(f"refused in {seconds * 1000:.1f} ms, Python heap peak {heap / 1024:.0f} KiB, new peak RSS {rss / MIB:.0f} MiB")
    return seconds, heap, rss


def tiny_lama_state() -> dict[str, torch.Tensor]:
    return read_tensors(TINY_LAMA)["state_dict"]


def save_lama(path: Path, state: dict, legacy: bool = False) -> Path:
    torch.save({"state_dict": state}, path, _use_new_zipfile_serialization=not legacy)
    return path


def test_a_huge_lama_block_index_is_refused_before_building(watched):
    files, unchanged = watched
    state = {**tiny_lama_state(), "generator.model.1000004.conv1.ffc.x": torch.zeros(1)}
    path = save_lama(files / "best.ckpt", state)
    refused_quickly(lambda: load_pretrained("lama", path),
                    r"best.ckpt: generator.model.1000004.conv1.ffc.x .*n_blocks = 1000000; this loader accepts 0…64")
    unchanged()


@pytest.mark.parametrize("family, key, shape, match", [
    ("lama", "generator.model.1.ffc.convl2l.weight", (10**5, 4, 7, 7), r"ngf = 100000; this loader accepts 1…256"),
    ("deepfillv2", "conv1.conv.weight", (10**5, 5, 5, 5), r"cnum = 100000; this loader accepts 4…256"),
    ("pconv", "generator.encoder.enc1.conv.weight", (10**5, 3, 7, 7), r"base_channels = 100000; .* 1…256"),
], ids=["lama ngf", "deepfillv2 cnum", "pconv base_channels"])
def test_a_huge_width_is_refused_before_building(watched, family, key, shape, match):
    files, unchanged = watched
    view = torch.zeros(1).expand(*shape)  # stored as one float with stride 0
    if family == "lama":
        path = save_lama(files / "best.ckpt", {**tiny_lama_state(), key: view})
    elif family == "deepfillv2":
        path = files / "states_tf_places2.pth"
        torch.save({"G": {key: view}}, path)
    else:
        path = files / "pconv.pth"
        torch.save({"meta": {}, "state_dict": {key: view}}, path)
    refused_quickly(lambda: load_pretrained(family, path), match)
    unchanged()


def test_a_stride_0_mask_kernel_of_1e10_elements_is_refused_before_comparing(watched):
    files, unchanged = watched
    state = {"generator.encoder.enc1.conv.weight": torch.zeros(64, 3, 7, 7),
             "generator.encoder.enc1.conv.weight_mask_updater": torch.ones(1).expand(10**5, 10**5, 1, 1)}
    path = files / "pconv.pth"
    torch.save({"meta": {}, "state_dict": state}, path)
    refused_quickly(lambda: load_pretrained("pconv", path),
                    r"enc1.conv.weight_mask_updater has shape \(100000, 100000, 1, 1\); expected the model's \(64, 3, 7, 7\)")
    unchanged()


def test_a_legacy_storage_larger_than_its_file_is_refused_before_allocating(watched):
    files, unchanged = watched
    path = deepfill_file(files / "hostile.pth", op_tensor("1", 10**12, (10**12,), (1,), legacy=True), legacy=True)
    refused_quickly(lambda: load_as_user(path), r"hostile.pth.*storages declare 4000000000008 bytes, more than the file's")
    unchanged()


def test_a_zip_storage_that_does_not_match_its_member_is_refused(watched):
    files, unchanged = watched
    body = op_dict({"G": op_dict({"conv1.conv.weight": op_tensor("1", 10**9, (10**9,), (1,), legacy=False)})})
    path = write_file(files / "hostile.pth", body, {"1": bytes(8)}, legacy=False)
    refused_quickly(lambda: load_as_user(path), r"member archive/data/1 holds 8 bytes, its storage declares 1000000000")
    unchanged()


def nested(depth: int) -> bytes:
    return EMPTY_TUPLE + TUPLE1 * depth


@pytest.mark.parametrize("family, layout", [
    ("lama", lambda key: op_dict({"state_dict": EMPTY_DICT + key + op_int(1) + SETITEM})),
    ("deepfillv2", lambda key: EMPTY_DICT + key + op_int(1) + SETITEM),
    ("pconv", lambda key: op_dict({"state_dict": EMPTY_DICT + key + op_int(1) + SETITEM})),
], ids=["lama", "deepfillv2", "pconv"])
@FORMATS
def test_a_key_nested_100000_deep_is_a_clear_error(watched, family, layout, legacy):
    files, unchanged = watched
    path = write_file(files / "deep.pth", layout(nested(100_000)), {}, legacy)
    with pytest.raises(PretrainedFileError, match="deep.pth"):
        load_pretrained(family, path)
    unchanged()


def test_a_key_nested_a_million_deep_is_refused_before_python_hashes_it(watched):
    """Hashing it (the dict's SETITEM) would overflow the C stack and kill the process, not raise."""
    files, unchanged = watched
    path = write_file(files / "deep.pth", op_dict({"state_dict": EMPTY_DICT + nested(10**6) + op_int(1) + SETITEM}),
                      {}, legacy=False)
    refused_quickly(lambda: load_pretrained("lama", path), r"deep.pth: member archive/data.pkl is refused: it nests "
                                                           r"tuples 101 deep \(byte \d+\); at most 100")
    unchanged()


# ------------------------------------------------------------------------------- part 2: archives

# bz2.compress(bytes(256 << 20), 9): 208 bytes that decompress to 256 MiB of zeros (about 3 s of CPU)
BZIP2_BOMB = bytes.fromhex(
    "425a68393141592653590e09e2df015f8e4000c0000008200030804d4642a025a90a80973141592653590e09e2df015f8e4000c0000008"
    "200030804d4642a025a90a80973141592653590e09e2df015f8e4000c0000008200030804d4642a025a90a80973141592653590e09e2d"
    "f015f8e4000c0000008200030804d4642a025a90a80973141592653590e09e2df015f8e4000c0000008200030804d4642a025a90a80973"
    "141592653591ecee4db012a3fc000c0040008200030cc0529a6aaa8491b002248f1772453850906b17caf00")
MIB = 1 << 20


def zeros_crc(size: int) -> int:
    crc = 0
    for _ in range(size // MIB):
        crc = zlib.crc32(bytes(MIB), crc)
    return crc


def deflated_zeros(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return b"".join(compressor.compress(bytes(MIB)) for _ in range(size // MIB)) + compressor.flush()


def compressed_member_file(path: Path, method: str) -> Path:
    """A torch-like archive whose storage member ``archive/data/0`` is zeros packed small: 64 MiB deflated to
    about 64 kB, or 256 MiB in the 208-byte bzip2 bomb; its pickle asks for a float32 tensor of that size."""
    size, compression, payload = {"deflate": (64 * MIB, zipfile.ZIP_DEFLATED, None),
                                  "bzip2": (256 * MIB, zipfile.ZIP_BZIP2, BZIP2_BOMB)}[method]
    payload = payload if payload is not None else deflated_zeros(size)
    body = op_dict({"G": op_dict({"conv1.conv.weight": op_tensor("0", size // 4, (size // 4,), (1,), False)})})
    member = ("archive/data/0", compression, payload, zeros_crc(size), size)
    return write_file(path, body, {}, legacy=False, extra_members=(member,))


@pytest.mark.parametrize("method", ["deflate", "bzip2"])
@pytest.mark.parametrize("reader", ["pretrained", "trainer"])
def test_a_compressed_member_is_refused_before_decompressing(watched, method, reader):
    files, unchanged = watched
    path = compressed_member_file(files / ("states_tf_places2.pth" if reader == "pretrained" else "last.pt"), method)
    assert path.stat().st_size < 100_000
    load = (lambda: load_pretrained("deepfillv2", path)) if reader == "pretrained" else (lambda: load_checkpoint(path))
    refused_quickly(load, f"{path.name}: member 'archive/data/0' is compressed \\({method}\\)")
    unchanged()


def test_a_member_larger_than_its_file_is_refused(watched):
    files, unchanged = watched
    body = op_dict({"G": op_dict({"conv1.conv.weight": op_tensor("0", 2, (2,), (1,), False)})})
    payload = struct.pack("<2f", 1.0, 2.0)
    member = ("archive/data/0", zipfile.ZIP_STORED, payload, zlib.crc32(payload), 1 << 30)  # declares 1 GiB
    path = write_file(files / "hostile.pth", body, {}, legacy=False, extra_members=(member,))
    for load in (lambda: load_as_user(path), lambda: load_checkpoint(path)):
        refused_quickly(load, r"hostile.pth: member 'archive/data/0' declares 1073741824 bytes but stores 8")
    unchanged()


def test_members_adding_up_to_more_than_the_file_are_refused(watched):
    """Ten directory entries pointing at one stored member: each alone fits, together they claim 10× its bytes."""
    files, unchanged = watched
    name, payload = b"archive/data/0", bytes(4096)
    crc = zlib.crc32(payload)
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, crc, len(payload), len(payload), len(name), 0)
    entry = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, crc, len(payload), len(payload),
                        len(name), 0, 0, 0, 0, 0, 0) + name
    body = local + name + payload
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 10, 10, 10 * len(entry), len(body), 0)
    path = files / "last.pt"
    path.write_bytes(body + entry * 10 + end)
    refused_quickly(lambda: load_checkpoint(path), r"last.pt: member 'archive/data/0' declares 4096 bytes \(members "
                                                   r"so far: 8192\), more than the file's")
    unchanged()


# ------------------------------------------------------------------------------- the tests can fail

def test_the_watch_sees_each_attack_when_it_is_done_by_hand(watched, tmp_path):
    """The checks above would see the damage: done here by hand, each one is reported (then undone)."""
    before = snapshot(tmp_path)
    torch._utils._rebuild_tensor_v2.__defaults__ = ({"neg": True},)
    torch.UntypedStorage.nbytes = 5
    torch.nn.Module.dump_patches = True
    (tmp_path / "escaped.patch").write_text("lines")
    assert set(differences(before, snapshot(tmp_path))) == {
        "_rebuild_tensor_v2.__defaults__", "UntypedStorage.nbytes", "Module.dump_patches", "files: ['escaped.patch']"}
    assert not round_trip_is_right(tmp_path)
    restore(before)
    (tmp_path / "escaped.patch").unlink()
    assert differences(before, snapshot(tmp_path)) == [] and round_trip_is_right(tmp_path)


def test_the_bzip2_bomb_is_one(tmp_path):
    decompressor = bz2.BZ2Decompressor()
    assert decompressor.decompress(BZIP2_BOMB, max_length=1 << 20) == bytes(1 << 20)  # and much more behind it


def test_hand_written_files_are_real_torch_files(tmp_path):
    """The writers above make files torch itself reads (so a refusal is the reader's doing)."""
    for legacy in (False, True):
        path = deepfill_file(tmp_path / f"plain_{legacy}.pth", op_value({"a": [1, "b"]}), legacy)
        loaded = torch.load(path, weights_only=True)
        expected = torch.tensor([1.0, 2.0]).view(2, 1, 1, 1).expand(2, 5, 5, 5)
        assert torch.equal(loaded["G"]["conv1.conv.weight"], expected) and loaded["x"] == {"a": [1, "b"]}
        assert torch.equal(read_tensors(path)["G"]["conv1.conv.weight"], expected)

