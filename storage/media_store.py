"""The media store: photos and voice messages on disk, each file named by the sha256 of its bytes.

`root/ab/abcdef…` (two hex digits of fan-out). The same bytes are stored once however often they are
sent. A write goes to a temporary file in the same directory and is renamed into place, so a reader
never sees half a file and two processes writing the same file both end with the whole of it. The
blocking file calls run in a thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from pathlib import Path

__all__ = ["MediaStore"]

_HEX = re.compile(r"^[0-9a-f]{64}$")


class MediaStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        if not _HEX.match(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / sha256

    async def put(self, data: bytes) -> str:
        """Store the bytes (if not there yet); their sha256."""
        digest = hashlib.sha256(data).hexdigest()
        await asyncio.to_thread(self._write, digest, data)
        return digest

    def _write(self, digest: str, data: bytes) -> None:
        target = self.path(digest)
        if target.is_file() and target.stat().st_size == len(data):
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    async def read(self, sha256: str) -> bytes | None:
        """The stored bytes, or None when the file is not there."""
        path = self.path(sha256)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
