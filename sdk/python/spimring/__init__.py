"""Write camera frames into a spimstream shared-memory ring (docs/ring-protocol.md, version 1).

    from spimring import RingWriter
    with RingWriter("/dev/shm/scope0", width=2048, height=2048, dtype="uint16", bit_depth=16,
                    slots=64, z_planes=100, channels=2) as ring:
        ring.start_acquisition()
        ring.publish(frame, t=t, c=c, z=z, camera_counter=hw_counter)
        ring.finish_acquisition()

The producer never waits for spimstream: every publish overwrites the oldest slot. Frames are
validated before a byte is written (one-line ValueError naming the field). Every 8-byte counter is
one aligned 8-byte store through a memoryview cast to "Q", as the protocol requires.
"""
from __future__ import annotations

import mmap
import operator
import os
import struct
import sys
import time
import weakref
from typing import Any, Optional

try:  # numpy is optional: arrays are validated and copied with it when it is there
    import numpy as _np
except ImportError:  # pragma: no cover - exercised where numpy is missing
    _np = None

__all__ = ["RingWriter", "checksum", "FLAG_STACK_START", "FLAG_STACK_END", "STATE_IDLE", "STATE_ACQUIRING", "STATE_FINISHED"]
__version__ = "1.0.0"

MAGIC = b"SPIMRING"
VERSION = 1
HEADER_BYTES = 4096
SLOT_HEADER_BYTES = 64
SLOT_ALIGN = 4096
FLAG_STACK_START = 1
FLAG_STACK_END = 2
STATE_IDLE, STATE_ACQUIRING, STATE_FINISHED = 0, 1, 2

# Header offsets (bytes); the 8-byte ones are indexed as words (offset // 8).
H_WRITE_COUNT = 48
H_ACQUISITION_ID = 56
H_STATE = 64
H_ACQUISITION_FIRST_FRAME = 88

U32 = 2**32
U64 = 2**64
_DTYPES = {"uint8": 1, "uint16": 2}
# memoryview formats of unsigned integers, by item size
_UNSIGNED = {1: ("B",), 2: ("H",), 4: ("I", "L"), 8: ("Q", "L")}


class _Shared:
    """What the finalizer needs (not the writer itself, so the writer can be collected)."""

    def __init__(self, path: str, mm: mmap.mmap, keep: bool) -> None:
        self.path = path
        self.mm: Optional[mmap.mmap] = mm
        self.words: Optional[memoryview] = memoryview(mm).cast("Q")
        self.state = memoryview(mm)[H_STATE : H_STATE + 4].cast("I")
        self.keep = keep
        self.acquiring = False


def _release(sh: _Shared) -> None:
    """Ends a running acquisition, unmaps, and removes the ring unless kept."""
    if sh.mm is None:
        return
    if sh.acquiring:
        sh.state[0] = STATE_FINISHED
        sh.acquiring = False
    for v in (sh.words, sh.state):
        if v is not None:
            v.release()
    sh.words = None
    sh.mm.close()
    sh.mm = None
    if not sh.keep:
        try:
            os.unlink(sh.path)
        except FileNotFoundError:
            pass


def _index(name: str, value: Any, upper: Optional[int], what: str) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{name}: {value!r} is not an integer") from None
    if v < 0 or (upper is not None and v >= upper):
        raise ValueError(f"{name}: {v} is out of range, expected 0 <= {name} < {upper} ({what})" if upper is not None else f"{name}: {v} is negative")
    return v


class RingWriter:
    """A ring file at `path`, created (under a temporary name, then renamed into place) and written."""

    def __init__(
        self,
        path: str,
        width: int,
        height: int,
        dtype: str = "uint16",
        bit_depth: int = 16,
        slots: int = 64,
        z_planes: int = 1,
        channels: int = 1,
        views: int = 1,
        keep: bool = False,
    ) -> None:
        if dtype not in _DTYPES:
            raise ValueError(f"dtype: {dtype!r}, expected 'uint8' or 'uint16'")
        self.path = str(path)
        self.width = _index("width", width, 65537, "pixels")
        self.height = _index("height", height, 65537, "pixels")
        if self.width == 0 or self.height == 0:
            raise ValueError(f"width, height: {self.width}x{self.height}, each must be 1 … 65536")
        self.dtype = dtype
        self.bpp = _DTYPES[dtype]
        self.bit_depth = _index("bit_depth", bit_depth, 8 * self.bpp + 1, f"significant bits of {dtype}")
        if self.bit_depth == 0:
            raise ValueError(f"bit_depth: 0, expected 1 … {8 * self.bpp}")
        self.slots = _index("slots", slots, 1_048_577, "slots in the ring")
        if self.slots < 2:
            raise ValueError(f"slots: {self.slots}, expected 2 … 1048576")
        self.z_planes = max(1, _index("z_planes", z_planes, U32, "planes per stack"))
        self.channels = max(1, _index("channels", channels, U32, "channels"))
        self.views = max(1, _index("views", views, U32, "views"))
        self.frame_bytes = self.width * self.height * self.bpp
        if self.frame_bytes >= U32:
            raise ValueError(f"width, height: a {self.width}x{self.height} frame is {self.frame_bytes} bytes, over the protocol's 4 GiB")
        self.stride = -(-(SLOT_HEADER_BYTES + self.frame_bytes) // SLOT_ALIGN) * SLOT_ALIGN
        size = HEADER_BYTES + self.slots * self.stride
        hdr = bytearray(HEADER_BYTES)
        hdr[0:8] = MAGIC
        struct.pack_into("<IIII", hdr, 8, VERSION, HEADER_BYTES, self.slots, SLOT_HEADER_BYTES)
        struct.pack_into("<Q", hdr, 24, self.stride)
        struct.pack_into("<IIII", hdr, 32, self.width, self.height, self.bpp, self.bit_depth)
        struct.pack_into("<II", hdr, 64, STATE_IDLE, os.getpid() % U32)
        struct.pack_into("<III", hdr, 72, self.z_planes, self.channels, self.views)
        # Built under a temporary name, then renamed: a reader never sees a half-written header.
        tmp = f"{self.path}.tmp-{os.getpid()}"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.ftruncate(fd, size)
            os.pwrite(fd, bytes(hdr), 0)
            mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            os.rename(tmp, self.path)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        self._sh = _Shared(self.path, mm, keep)
        # Left open, the ring is still released at garbage collection or interpreter exit.
        self._finalizer = weakref.finalize(self, _release, self._sh)
        self.written = 0
        self.acquisition_id = 0

    # -- acquisitions ------------------------------------------------------------------------------

    def _words(self) -> memoryview:
        w = self._sh.words
        if w is None:
            raise ValueError(f"ring {self.path}: closed")
        return w

    def start_acquisition(self) -> int:
        """Starts an acquisition (its frames are stored); returns its id."""
        words = self._words()
        self.acquisition_id += 1
        words[H_ACQUISITION_FIRST_FRAME // 8] = self.written
        words[H_ACQUISITION_ID // 8] = self.acquisition_id
        self._sh.state[0] = STATE_ACQUIRING
        self._sh.acquiring = True
        return self.acquisition_id

    def finish_acquisition(self) -> None:
        """Ends the acquisition after its last published frame."""
        self._words()
        self._sh.state[0] = STATE_FINISHED
        self._sh.acquiring = False

    # -- frames ------------------------------------------------------------------------------------

    def _check_array(self, frame: Any) -> Any:
        """A numpy array: (height, width), unsigned, the ring's pixel size, little-endian."""
        a = _np.asarray(frame)
        if a.ndim != 2 or a.shape != (self.height, self.width):
            raise ValueError(
                f"shape: {tuple(a.shape)}, the ring expects (height, width) = ({self.height}, {self.width})"
                + (" — is the frame transposed?" if a.shape == (self.width, self.height) else "")
            )
        dt = a.dtype
        if dt.kind != "u" or dt.itemsize != self.bpp:
            raise ValueError(f"dtype: {dt.name}, the ring holds {self.dtype}")
        if dt.byteorder == ">" or (dt.byteorder == "=" and sys.byteorder != "little"):
            raise ValueError(f"dtype: big-endian {dt.name} ({dt.str}), the ring holds little-endian {self.dtype}: use frame.astype('<u{self.bpp}')")
        return a

    def _check_buffer(self, frame: Any) -> memoryview:
        """bytes-like: exactly the frame's bytes; a typed buffer must also be unsigned of the pixel size."""
        try:
            m = memoryview(frame)
        except TypeError:
            raise ValueError(f"frame: {type(frame).__name__} is neither a numpy array nor a buffer of pixels") from None
        if m.itemsize != 1 and (m.itemsize != self.bpp or m.format.lstrip("<=@") not in _UNSIGNED.get(m.itemsize, ())):
            raise ValueError(f"dtype: buffer format {m.format!r}, the ring holds {self.dtype}")
        if m.ndim >= 2 and m.itemsize == self.bpp and tuple(m.shape) != (self.height, self.width):
            raise ValueError(f"shape: {tuple(m.shape)}, the ring expects (height, width) = ({self.height}, {self.width})")
        if m.nbytes != self.frame_bytes:
            raise ValueError(
                f"frame: {m.nbytes} bytes, the ring expects {self.frame_bytes} ({self.width}x{self.height} x {self.bpp} bytes)"
            )
        return m if m.c_contiguous else memoryview(m.tobytes())  # copied once

    def publish(
        self,
        frame: Any,
        t: int = 0,
        c: int = 0,
        z: int = 0,
        view: int = 0,
        camera_counter: Optional[int] = None,
        timestamp_ns: Optional[int] = None,
        flags: Optional[int] = None,
    ) -> int:
        """Copies one frame into the next slot; returns its frame number.

        Order (docs/ring-protocol.md): seq_begin, metadata and pixels, seq_end, then write_count.
        `flags` defaults to the stack start/end bits from z. A non-contiguous numpy array is copied
        straight into the slot (no temporary frame).
        """
        words = self._words()
        t = _index("t", t, U32, "timepoint")
        c = _index("c", c, self.channels, f"channels = {self.channels}")
        z = _index("z", z, self.z_planes, f"z_planes = {self.z_planes}")
        view = _index("view", view, self.views, f"views = {self.views}")
        n = self.written
        counter = n if camera_counter is None else _index("camera_counter", camera_counter, U64, "u64")
        ts = time.time_ns() if timestamp_ns is None else _index("timestamp_ns", timestamp_ns, U64, "u64")
        if flags is None:
            flags = (FLAG_STACK_START if z == 0 else 0) | (FLAG_STACK_END if z == self.z_planes - 1 else 0)
        flags = _index("flags", flags, U32, "u32")
        array = self._check_array(frame) if _np is not None and hasattr(frame, "__array_interface__") else None
        data = None if array is not None else self._check_buffer(frame)

        mm = self._sh.mm
        assert mm is not None
        pos = HEADER_BYTES + (n % self.slots) * self.stride
        px = pos + SLOT_HEADER_BYTES
        words[pos // 8] = n + 1  # seq_begin
        words[pos // 8 + 2] = counter
        words[pos // 8 + 3] = ts
        struct.pack_into("<IIIIIIII", mm, pos + 32, t, c, z, view, flags, self.frame_bytes, self.width, self.height)
        if array is not None:
            dst = _np.frombuffer(mm, dtype=f"<u{self.bpp}", count=self.width * self.height, offset=px)
            try:
                _np.copyto(dst.reshape(self.height, self.width), array, casting="no")
            finally:
                del dst
        else:
            mm[px : px + self.frame_bytes] = data
        words[pos // 8 + 1] = n + 1  # seq_end
        self.written = n + 1
        words[H_WRITE_COUNT // 8] = self.written
        return n

    # -- life --------------------------------------------------------------------------------------

    def close(self) -> None:
        """Ends a running acquisition, unmaps the ring and removes its file (unless keep=True)."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        return self._sh.mm is None

    def __enter__(self) -> "RingWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def checksum(values: Any) -> int:
    """FNV-1a over pixel values, as spimstream's workers compute it (for tests)."""
    h = 0x811C9DC5
    for v in values:
        h = ((h ^ int(v)) * 0x01000193) & 0xFFFFFFFF
    return h
