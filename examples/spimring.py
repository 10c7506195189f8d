"""Write frames into a spimstream shared-memory ring from Python (stdlib only; numpy optional).

    from spimring import RingWriter
    with RingWriter("/dev/shm/scope0", width=2048, height=2048, dtype="uint16", bit_depth=16,
                    slots=64, z_planes=100, channels=2) as ring:
        ring.start_acquisition()
        for t in range(T):
            for c in range(2):
                for z in range(100):
                    frame = camera.snap()            # numpy uint16 array, bytes, or memoryview
                    ring.publish(frame, t=t, c=c, z=z, camera_counter=camera.frame_number)
        ring.finish_acquisition()

The producer never waits for spimstream: every publish overwrites the oldest slot. The layout is
documented in docs/ring-protocol.md and mirrors src/ingest/ring-layout.ts.
"""
import mmap
import os
import struct
import time

MAGIC = b"SPIMRING"
VERSION = 1
HEADER_BYTES = 4096
SLOT_HEADER_BYTES = 64
SLOT_ALIGN = 4096
FLAG_STACK_START = 1
FLAG_STACK_END = 2
STATE_IDLE, STATE_ACQUIRING, STATE_FINISHED = 0, 1, 2

# header offsets
H_WRITE_COUNT = 48
H_ACQUISITION_ID = 56
H_STATE = 64
H_ACQUISITION_FIRST_FRAME = 88


class RingWriter:
    def __init__(self, path, width, height, dtype="uint16", bit_depth=16, slots=64,
                 z_planes=1, channels=1, views=1):
        if dtype not in ("uint8", "uint16"):
            raise ValueError("dtype must be uint8 or uint16, got %r" % (dtype,))
        self.path = path
        self.width, self.height = int(width), int(height)
        self.bpp = 1 if dtype == "uint8" else 2
        self.frame_bytes = self.width * self.height * self.bpp
        self.slots = int(slots)
        self.stride = -(-(SLOT_HEADER_BYTES + self.frame_bytes) // SLOT_ALIGN) * SLOT_ALIGN
        size = HEADER_BYTES + self.slots * self.stride
        # Build under a temporary name, then rename: a reader never sees a half-written header.
        tmp = "%s.tmp-%d" % (path, os.getpid())
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        os.ftruncate(fd, size)
        hdr = bytearray(HEADER_BYTES)
        hdr[0:8] = MAGIC
        struct.pack_into("<IIII", hdr, 8, VERSION, HEADER_BYTES, self.slots, SLOT_HEADER_BYTES)
        struct.pack_into("<Q", hdr, 24, self.stride)
        struct.pack_into("<IIII", hdr, 32, self.width, self.height, self.bpp, int(bit_depth))
        struct.pack_into("<II", hdr, 64, STATE_IDLE, os.getpid())
        struct.pack_into("<III", hdr, 72, int(z_planes), int(channels), int(views))
        os.pwrite(fd, bytes(hdr), 0)
        os.rename(tmp, path)
        self.mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        os.close(fd)
        self.written = 0
        self.acquisition_id = 0

    def start_acquisition(self):
        self.acquisition_id += 1
        struct.pack_into("<Q", self.mm, H_ACQUISITION_FIRST_FRAME, self.written)
        struct.pack_into("<Q", self.mm, H_ACQUISITION_ID, self.acquisition_id)
        struct.pack_into("<I", self.mm, H_STATE, STATE_ACQUIRING)

    def finish_acquisition(self):
        struct.pack_into("<I", self.mm, H_STATE, STATE_FINISHED)

    def publish(self, frame, t=0, c=0, z=0, view=0, camera_counter=None, timestamp_ns=None, flags=0):
        """Copies one frame into the next slot (seqlock: begin, pixels, end, then write_count)."""
        data = memoryview(frame).cast("B") if not isinstance(frame, (bytes, bytearray)) else memoryview(frame)
        if data.nbytes != self.frame_bytes:
            raise ValueError("frame is %d bytes, the ring expects %d (%dx%d x %d bytes)"
                             % (data.nbytes, self.frame_bytes, self.width, self.height, self.bpp))
        n = self.written
        pos = HEADER_BYTES + (n % self.slots) * self.stride
        mm = self.mm
        struct.pack_into("<Q", mm, pos, n + 1)  # seq_begin
        struct.pack_into("<QQIIIIIIII", mm, pos + 16,
                         n if camera_counter is None else int(camera_counter),
                         time.time_ns() if timestamp_ns is None else int(timestamp_ns),
                         t, c, z, view, flags, self.frame_bytes, self.width, self.height)
        mm[pos + SLOT_HEADER_BYTES: pos + SLOT_HEADER_BYTES + self.frame_bytes] = data
        struct.pack_into("<Q", mm, pos + 8, n + 1)  # seq_end
        self.written = n + 1
        struct.pack_into("<Q", mm, H_WRITE_COUNT, self.written)
        return n

    def close(self):
        self.mm.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def checksum(values):
    """FNV-1a over pixel values, as spimstream's workers compute it (for tests)."""
    h = 0x811C9DC5
    for v in values:
        h = ((h ^ v) * 0x01000193) & 0xFFFFFFFF
    return h
