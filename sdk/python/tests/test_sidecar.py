"""The package as a user runs it: the real sidecar (bin/spimstream.js, built by `npm run build`) reads
the ring this package writes, and the store it leaves is read back with tensorstore, bit-exact,
including frames given as non-contiguous crops and as raw bytes."""
import glob
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import numpy as np
import pytest
import tensorstore as ts

from spimring import RingWriter

ROOT = os.environ.get("SPIMSTREAM_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..")))
BIN = os.path.join(ROOT, "bin", "spimstream.js")
W, H, Z, C, T = 96, 64, 8, 2, 3


def wait_for(cond, timeout, what):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def ring_attached(log):
    """The sidecar's /readyz says ring_attached once it reads the ring (what acquisition software can wait for)."""
    log.seek(0)
    m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", log.read())
    if not m:
        return False
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{m.group(1)}/readyz", timeout=5) as r:
            return json.load(r)["ring_attached"]
    except urllib.error.HTTPError as e:  # 503 until ready
        return json.load(e)["ring_attached"]


def open_store(store):
    """The tensorstore spec for a spimstream store: zarr3 at <store>/0, axes t, c, z, y, x."""
    return ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": os.path.join(store, "0")}}, open=True).result()


@pytest.fixture
def paths(tmp_path):
    ring = f"/dev/shm/spimring-sidecar-{uuid.uuid4().hex[:8]}"
    yield ring, str(tmp_path / "data")
    for f in (ring, ring + ".lock", ring + ".seen"):
        if os.path.exists(f):
            os.unlink(f)


def test_frames_published_by_the_package_are_stored_bit_exact(paths):
    ring_path, out = paths
    assert os.path.exists(os.path.join(ROOT, "dist")), "run `npm run build` first"
    log = open(os.path.join(os.path.dirname(out), "sidecar.log"), "w+")
    sidecar = subprocess.Popen(
        ["node", BIN, "run", "--source", f"shm:{ring_path}", "--out", out, "--port", "0", "--set", "storage.min_free_bytes=0"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        rng = np.random.default_rng(7)
        big = rng.integers(0, 65536, size=(T, C, Z, 2 * H, 2 * W), dtype=np.uint16)
        expected = np.empty((T, C, Z, H, W), np.uint16)
        with RingWriter(ring_path, W, H, "uint16", bit_depth=16, slots=T * C * Z, z_planes=Z, channels=C) as ring:
            wait_for(lambda: ring_attached(log), 60, "the sidecar to attach")
            ring.start_acquisition()
            n = 0
            for t in range(T):
                for c in range(C):
                    for z in range(Z):
                        crop = big[t, c, z, 1::2, ::2]  # a strided view: copied straight into the slot
                        expected[t, c, z] = crop
                        frame = crop.tobytes() if n % 3 == 0 else crop
                        ring.publish(frame, t=t, c=c, z=z, camera_counter=n)
                        n += 1
            ring.finish_acquisition()
        # close() removed the ring; the sidecar finishes from its mapping and writes the manifest.
        assert not os.path.exists(ring_path)
        wait_for(lambda: glob.glob(os.path.join(out, "*.ome.zarr", "spimstream-manifest.json")), 60, "the manifest")
        sidecar.send_signal(signal.SIGTERM)
        assert sidecar.wait(60) == 0
        (store,) = glob.glob(os.path.join(out, "*.ome.zarr"))
        manifest = json.load(open(os.path.join(store, "spimstream-manifest.json")))
        frames = manifest["frames"]
        assert frames["received"] == T * C * Z
        assert frames["lost"] == {"overrun": 0, "gap": 0, "torn": 0} and frames["unstored"] == {}
        arr = open_store(store)
        assert arr.dtype == ts.uint16 and tuple(arr.shape) == (T, C, Z, H, W)
        np.testing.assert_array_equal(arr.read().result(), expected)
    finally:
        if sidecar.poll() is None:
            sidecar.kill()
        log.seek(0)
        print(log.read()[-3000:])
