"""Rule mip (python3 mip.py STORE_DIR OUT_DIR): the maximum projection over z of each timepoint and channel, as an OME-Zarr 0.5 image.

Reads array 0 (t, c, z, y, x) of the verified store with tensorstore one stack at a time and writes
array 0 (t, c, y, x) of a new OME-Zarr (Zarr v3, one chunk per plane, zstd) beside it.
"""
import json
import os
import sys

import numpy as np
import tensorstore as ts

src_dir, out = sys.argv[1], sys.argv[2]
src = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": os.path.join(src_dir, "0")}}, open=True).result()
T, C, Z, Y, X = src.shape
os.makedirs(out, exist_ok=True)
dst = ts.open(
    {
        "driver": "zarr3",
        "kvstore": {"driver": "file", "path": os.path.join(out, "0")},
        "metadata": {
            "shape": [T, C, Y, X],
            "data_type": str(src.dtype.numpy_dtype),
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1, 1, Y, X]}},
            "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "zstd", "configuration": {"level": 3}}],
            "dimension_names": ["t", "c", "y", "x"],
        },
        "create": True,
    }
).result()
for t in range(T):
    for c in range(C):
        dst[t, c] = np.max(src[t, c].read().result(), axis=0)
# The OME-Zarr 0.5 group: axes and the scale of the source's level 0 without z.
attrs = json.load(open(os.path.join(src_dir, "zarr.json"))).get("attributes", {})
ms = attrs.get("ome", {}).get("multiscales", [{}])[0]
axes = [a for a in ms.get("axes", []) if a.get("name") != "z"] or [{"name": n} for n in "tcyx"]
scale = next((tr["scale"] for tr in ms.get("datasets", [{}])[0].get("coordinateTransformations", []) if tr.get("type") == "scale"), None)
group = {
    "zarr_format": 3,
    "node_type": "group",
    "attributes": {
        "ome": {
            "version": "0.5",
            "multiscales": [
                {
                    "name": "max projection over z",
                    "axes": axes,
                    "datasets": [
                        {
                            "path": "0",
                            "coordinateTransformations": [
                                {"type": "scale", "scale": [s for i, s in enumerate(scale) if i != 2] if scale and len(scale) == 5 else [1.0] * 4}
                            ],
                        }
                    ],
                }
            ],
        },
        "spimstream_processing": {"source": os.path.basename(src_dir), "operation": "max over z"},
    },
}
json.dump(group, open(os.path.join(out, "zarr.json"), "w"), indent=1)
print(f"mip: {T} timepoints x {C} channels of {Y}x{X}")
