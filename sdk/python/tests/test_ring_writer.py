"""RingWriter on its own: the bytes it writes are the protocol's (read back from the file with struct,
written from docs/ring-protocol.md), and bad frames or indices are refused before a byte is written."""
import os
import struct
import uuid

import numpy as np
import pytest

from spimring import FLAG_STACK_END, FLAG_STACK_START, RingWriter

W, H = 48, 32


@pytest.fixture
def ring_path():
    p = f"/dev/shm/spimring-pytest-{uuid.uuid4().hex[:8]}"
    yield p
    for f in (p, p + ".lock"):
        if os.path.exists(f):
            os.unlink(f)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def header(b):
    magic = b[0:8]
    version, header_bytes, slots, slot_header = struct.unpack_from("<IIII", b, 8)
    (stride,) = struct.unpack_from("<Q", b, 24)
    width, height, dtype, bit_depth = struct.unpack_from("<IIII", b, 32)
    write_count, acq_id = struct.unpack_from("<QQ", b, 48)
    state, pid, z, c, v = struct.unpack_from("<IIIII", b, 64)
    (first,) = struct.unpack_from("<Q", b, 88)
    return dict(magic=magic, version=version, header_bytes=header_bytes, slots=slots, slot_header=slot_header, stride=stride,
                width=width, height=height, dtype=dtype, bit_depth=bit_depth, write_count=write_count, acq_id=acq_id,
                state=state, pid=pid, z=z, c=c, v=v, first=first)


def slot(b, hdr, n):
    pos = 4096 + (n % hdr["slots"]) * hdr["stride"]
    seq_begin, seq_end, counter, ts = struct.unpack_from("<QQQQ", b, pos)
    t, c, z, view, flags, payload, w, h = struct.unpack_from("<IIIIIIII", b, pos + 32)
    px = np.frombuffer(b, dtype="<u2", count=w * h, offset=pos + 64).reshape(h, w)
    return dict(seq_begin=seq_begin, seq_end=seq_end, counter=counter, ts=ts, t=t, c=c, z=z, view=view, flags=flags,
                payload=payload, w=w, h=h, px=px)


def test_header_slots_and_counters_follow_the_protocol(ring_path):
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 4096, size=(H, W), dtype=np.uint16) for _ in range(6)]
    with RingWriter(ring_path, W, H, "uint16", bit_depth=12, slots=4, z_planes=3, channels=2, keep=True) as ring:
        assert ring.start_acquisition() == 1
        for n, f in enumerate(frames):
            assert ring.publish(f, t=n // 6, c=(n // 3) % 2, z=n % 3, camera_counter=100 + n, timestamp_ns=5 + n) == n
        b = read(ring_path)
        hd = header(b)
        assert hd["magic"] == b"SPIMRING" and hd["version"] == 1 and hd["header_bytes"] == 4096 and hd["slot_header"] == 64
        assert (hd["slots"], hd["width"], hd["height"], hd["dtype"], hd["bit_depth"]) == (4, W, H, 2, 12)
        assert hd["stride"] % 4096 == 0 and hd["stride"] >= 64 + W * H * 2
        assert (hd["z"], hd["c"], hd["v"]) == (3, 2, 1)
        assert (hd["write_count"], hd["acq_id"], hd["state"], hd["first"]) == (6, 1, 1, 0)
        # The ring holds the last 4 frames, each in slot n mod 4.
        for n in range(2, 6):
            s = slot(b, hd, n)
            assert s["seq_begin"] == s["seq_end"] == n + 1
            assert (s["counter"], s["ts"], s["t"], s["c"], s["z"], s["view"]) == (100 + n, 5 + n, n // 6, (n // 3) % 2, n % 3, 0)
            assert s["flags"] == (FLAG_STACK_START if n % 3 == 0 else 0) | (FLAG_STACK_END if n % 3 == 2 else 0)
            assert (s["payload"], s["w"], s["h"]) == (W * H * 2, W, H)
            np.testing.assert_array_equal(s["px"], frames[n])
        ring.finish_acquisition()
        assert header(read(ring_path))["state"] == 2
        assert ring.start_acquisition() == 2
        hd = header(read(ring_path))
        assert (hd["acq_id"], hd["first"], hd["state"]) == (2, 6, 1)
    # keep=True: the file stays; close() ended the running acquisition.
    assert header(read(ring_path))["state"] == 2


def test_non_contiguous_and_raw_frames_are_stored_as_given(ring_path):
    big = np.arange(4 * H * 3 * W, dtype=np.uint16).reshape(4 * H, 3 * W)
    crop = big[5 : 5 + 2 * H : 2, 7 : 7 + W]  # strided in both axes
    transposed = np.ascontiguousarray(big[:W, :H]).T  # (H, W), Fortran order
    raw = (np.arange(W * H, dtype="<u2") * 3).tobytes()
    with RingWriter(ring_path, W, H, slots=4) as ring:
        ring.start_acquisition()
        ring.publish(crop)
        ring.publish(transposed)
        ring.publish(raw)
        ring.publish(memoryview(bytearray(raw)))
        b = read(ring_path)
        hd = header(b)
        np.testing.assert_array_equal(slot(b, hd, 0)["px"], crop)
        np.testing.assert_array_equal(slot(b, hd, 1)["px"], transposed)
        expected = np.frombuffer(raw, dtype="<u2").reshape(H, W)
        np.testing.assert_array_equal(slot(b, hd, 2)["px"], expected)
        np.testing.assert_array_equal(slot(b, hd, 3)["px"], expected)


@pytest.mark.parametrize(
    "frame, kw, message",
    [
        (np.zeros((W, H), np.uint16), {}, r"^shape: \(48, 32\), the ring expects \(height, width\) = \(32, 48\) — is the frame transposed\?$"),
        (np.zeros((H, W), ">u2"), {}, r"^dtype: big-endian uint16 \(>u2\), the ring holds little-endian uint16"),
        (np.zeros((H, W), np.int16), {}, r"^dtype: int16, the ring holds uint16$"),
        (np.zeros((H, W), np.uint8), {}, r"^dtype: uint8, the ring holds uint16$"),
        (np.zeros((H, W), np.float32), {}, r"^dtype: float32, the ring holds uint16$"),
        (np.zeros((1, H, W), np.uint16), {}, r"^shape: \(1, 32, 48\)"),
        (b"\0" * (W * H * 2 - 2), {}, r"^frame: 3070 bytes, the ring expects 3072 \(48x32 x 2 bytes\)$"),
        ("pixels", {}, r"^frame: str is neither a numpy array nor a buffer of pixels$"),
        (np.zeros((H, W), np.uint16), {"z": -1}, r"^z: -1 is out of range, expected 0 <= z < 3 \(z_planes = 3\)$"),
        (np.zeros((H, W), np.uint16), {"z": 3}, r"^z: 3 is out of range, expected 0 <= z < 3"),
        (np.zeros((H, W), np.uint16), {"c": 2}, r"^c: 2 is out of range, expected 0 <= c < 2 \(channels = 2\)$"),
        (np.zeros((H, W), np.uint16), {"view": 1}, r"^view: 1 is out of range"),
        (np.zeros((H, W), np.uint16), {"t": -1}, r"^t: -1 is out of range"),
        (np.zeros((H, W), np.uint16), {"t": 1.5}, r"^t: 1.5 is not an integer$"),
        (np.zeros((H, W), np.uint16), {"camera_counter": -3}, r"^camera_counter: -3 is out of range"),
    ],
)
def test_bad_frames_are_refused_in_one_line_before_anything_is_written(ring_path, frame, kw, message):
    with RingWriter(ring_path, W, H, slots=4, z_planes=3, channels=2) as ring:
        ring.start_acquisition()
        before = read(ring_path)
        with pytest.raises(ValueError, match=message) as e:
            ring.publish(frame, **kw)
        assert "\n" not in str(e.value)
        assert read(ring_path) == before
        assert ring.written == 0


def test_bad_geometry_is_refused_and_leaves_no_file(ring_path):
    for kw, message in [
        (dict(dtype="int16"), r"^dtype: 'int16', expected 'uint8' or 'uint16'$"),
        (dict(bit_depth=13, dtype="uint8"), r"^bit_depth: 13 is out of range"),
        (dict(slots=1), r"^slots: 1, expected 2"),
        (dict(width=0), r"^width, height: 0x32"),
    ]:
        args = dict(width=W, height=H)
        args.update(kw)
        with pytest.raises(ValueError, match=message):
            RingWriter(ring_path, **args)
        assert not os.path.exists(ring_path)
    assert not [f for f in os.listdir("/dev/shm") if f.startswith(os.path.basename(ring_path))]


def test_close_removes_the_ring_and_a_forgotten_writer_is_released(ring_path):
    ring = RingWriter(ring_path, W, H)
    ring.start_acquisition()
    assert os.path.exists(ring_path)
    ring.close()
    assert not os.path.exists(ring_path) and ring.closed
    ring.close()  # twice is harmless
    with pytest.raises(ValueError, match=r"closed$"):
        ring.publish(np.zeros((H, W), np.uint16))
    # Dropped without close(): garbage collection releases it too.
    ring = RingWriter(ring_path, W, H)
    assert os.path.exists(ring_path)
    del ring
    assert not os.path.exists(ring_path)


def test_uint8_ring(ring_path):
    f = np.arange(W * H, dtype=np.uint8).reshape(H, W)
    with RingWriter(ring_path, W, H, "uint8", bit_depth=8, slots=2, keep=True) as ring:
        ring.publish(f)
        b = read(ring_path)
        hd = header(b)
        assert hd["dtype"] == 1
        pos = 4096
        np.testing.assert_array_equal(np.frombuffer(b, np.uint8, W * H, pos + 64).reshape(H, W), f)
        with pytest.raises(ValueError, match=r"^dtype: uint16, the ring holds uint8$"):
            ring.publish(f.astype(np.uint16))
