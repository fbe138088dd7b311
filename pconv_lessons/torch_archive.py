"""``torch.save``'s zip archive, checked from its central directory before a byte of it is decompressed.

``torch.save`` (PyTorch ≥ 1.6) writes a zip file whose members are all *stored*: uncompressed, each member's bytes
exactly its size, one after the other. So a member that is compressed (deflate, bzip2, LZMA), encrypted, declares
a size different from its stored size, or does not fit in the file, was not written by ``torch.save`` — and
reading it could cost far more than the file's size (a 1 MB deflate member is a 1 GiB tensor, a 3 kB bzip2 member
keeps a CRC check busy for half a minute). The rule, checked on the central directory alone:

    every member stored, not encrypted, compressed size = size, and  Σ member sizes ≤ size of the file

(stored members cannot overlap, so their sizes add up to at most the file). Only then is every member read once to
check its CRC-32, which costs one pass over the file. The trainer's checkpoint reader and
``pconv_lessons.pretrained`` both call ``check_torch_archive``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

COMPRESSION_NAMES = {zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "LZMA"}
ENCRYPTED_FLAG = 0x1


def check_torch_archive(path: str | Path, what: str = "file") -> None:
    """A ``ValueError`` naming ``what`` (e.g. "checkpoint"), the file and the member if ``path`` is not a well-formed
    ``torch.save`` zip archive (the rule above) or a member fails its CRC-32 check."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with zipfile.ZipFile(path) as archive:
            _check_members(archive.infolist(), path, size, what)
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as error:
        raise ValueError(f"{what} {path} is corrupt or not a torch.save file ({error})") from error
    if damaged is not None:
        raise ValueError(f"{what} {path} is corrupt: {damaged} fails its CRC-32 check (a damaged copy?)")


def _check_members(members: list[zipfile.ZipInfo], path: Path, size: int, what: str) -> None:
    total = 0
    for member in members:
        where = f"{what} {path}: member {member.filename!r}"
        if member.compress_type != zipfile.ZIP_STORED:
            method = COMPRESSION_NAMES.get(member.compress_type, f"method {member.compress_type}")
            raise ValueError(f"{where} is compressed ({method}); torch.save writes stored (uncompressed) members "
                             "only, so it was refused before decompressing anything")
        if member.flag_bits & ENCRYPTED_FLAG:
            raise ValueError(f"{where} is encrypted; torch.save never encrypts")
        if member.compress_size != member.file_size:
            raise ValueError(f"{where} declares {member.file_size} bytes but stores {member.compress_size}; "
                             "a stored member's two sizes are equal")
        total += member.file_size
        if member.header_offset + member.file_size > size or total > size:
            raise ValueError(f"{where} declares {member.file_size} bytes (members so far: {total}), more than the "
                             f"file's {size} bytes can hold")
