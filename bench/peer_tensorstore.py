"""The peer row of `npm run bench`: tensorstore writing the frames spimstream's benchmark stores, in
spimstream's layout (array t, c, z, y, x; chunks 32 x 256 x 256; one shard per z-block plane set;
blosc zstd-1 with byte shuffle inside; a crc32c shard index), input already in RAM, no QC, no
preview: storage alone.

usage: python peer_tensorstore.py FRAMES.raw WIDTH HEIGHT ZPLANES BLOCKS OUT_DIR THREADS
FRAMES.raw holds ZPLANES frames (uint16, row-major); every block writes them again. Prints one JSON
line: raw bytes, wall seconds, process CPU seconds, MB/s, CPU s per raw GB, compressed bytes.
"""
import importlib.metadata
import json
import os
import resource
import sys
import time

import numpy as np
import tensorstore as ts

path, W, H, Z, BLOCKS, out, threads = sys.argv[1], *map(int, sys.argv[2:6]), sys.argv[6], int(sys.argv[7])
stack = np.fromfile(path, dtype="<u2").reshape(Z, H, W)
C = 2
T = -(-BLOCKS // C)
ctx = ts.Context({"data_copy_concurrency": {"limit": threads}, "file_io_concurrency": {"limit": threads}})
arr = ts.open(
    {
        "driver": "zarr3",
        "kvstore": {"driver": "file", "path": os.path.join(out, "0")},
        "metadata": {
            "shape": [T, C, Z, H, W],
            "data_type": "uint16",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1, 1, Z, H, W]}},
            "codecs": [
                {
                    "name": "sharding_indexed",
                    "configuration": {
                        "chunk_shape": [1, 1, Z, 256, 256],
                        "codecs": [
                            {"name": "bytes", "configuration": {"endian": "little"}},
                            {"name": "blosc", "configuration": {"cname": "zstd", "clevel": 1, "shuffle": "shuffle", "typesize": 2, "blocksize": 0}},
                        ],
                        "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}],
                    },
                }
            ],
        },
        "create": True,
        "delete_existing": True,
    },
    context=ctx,
).result()


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


c0, t0 = cpu(), time.perf_counter()
for b in range(BLOCKS):
    arr[b // C, b % C].write(stack).result()
wall, used = time.perf_counter() - t0, cpu() - c0
raw = BLOCKS * stack.nbytes
written = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
print(json.dumps({"raw_bytes": raw, "wall_s": wall, "cpu_s": used, "mb_s": raw / wall / 1e6, "cpu_s_per_gb": used / (raw / 1e9),
                  "written_bytes": written, "ratio": raw / max(1, written), "threads": threads, "tensorstore": importlib.metadata.version("tensorstore")}))
