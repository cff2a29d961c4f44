"""Reading a photo once: the same bytes feed its content hash and its decode.

Issue 20, point 3: a file overwritten between hashing and decoding got the first bytes' hash
and the second bytes' caption — kept forever, and inherited by later copies of the first
bytes. Here a file is read into memory once, hashed, and (if it is new content) decoded from
those very bytes, so a caption always describes the bytes its hash names. A stored photo
decoded again (OCR with a new engine, `--recaption`) is checked the same way: bytes that no
longer hash to the photo's hash are not used for it.

It also reads each new photo from disk once instead of twice (hash pass, then decode pass),
which matters when a first index of a large library does not fit in the page cache.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from capdex.regular_file import open_regular

#: Files up to this size are held in memory between hashing and decoding; a larger one (a huge
#: TIFF) is hashed as a stream and decoded from the file, then hashed again to check that the
#: bytes decoded were the bytes hashed.
IN_MEMORY_MAX = 256 * 2**20
#: Read size when hashing a large file: a few GIL hand-backs per file, not one per megabyte.
CHUNK = 1 << 23


@dataclass
class ReadBytes:
    """What one read of a file gave."""

    content_hash: str
    size: int
    #: The bytes, or None for a file over IN_MEMORY_MAX.
    data: bytes | None


def read_photo(fs_path: str) -> ReadBytes:
    """Read and hash a file (hashlib releases the GIL, so threads overlap). Raises OSError
    (`capdex.regular_file.NotRegularFile` for a FIFO or device: it would block)."""
    with open_regular(fs_path) as handle:
        data = handle.read(IN_MEMORY_MAX + 1)
        if len(data) <= IN_MEMORY_MAX:
            return ReadBytes(hashlib.sha256(data).hexdigest(), len(data), data)
        digest, size = hashlib.sha256(data), len(data)
        del data
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return ReadBytes(digest.hexdigest(), size, None)


def hash_file(fs_path: str) -> str:
    """SHA-256 of a file's bytes, read as a stream."""
    digest = hashlib.sha256()
    with open_regular(fs_path) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
