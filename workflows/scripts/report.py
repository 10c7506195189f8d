"""Rule report (python3 report.py VERIFIED_JSON MIP_DIR REPORT_MD): a short processing report (markdown) of what was verified and made."""
import json
import os
import sys
import time

import tensorstore as ts

verified_json, mip, report = sys.argv[1:4]
v = json.load(open(verified_json))
arr = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": os.path.join(mip, "0")}}, open=True).result()
frames = v.get("frames") or {}
lines = [
    f"# Processing report: {v['store']}",
    "",
    f"- verified at the destination: {v['files']} files, {v['bytes'] / 1e6:.1f} MB, sizes and SHA-256 as in the manifest",
    f"- frames received by spimstream: {frames.get('received', '?')}; lost: {frames.get('lost', '?')}; unstored: {frames.get('unstored', '?')}",
    f"- maximum projection over z: {os.path.basename(mip)}, shape (t, c, y, x) = {tuple(arr.shape)}",
    f"- finished: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
    "",
]
open(report, "w").write("\n".join(lines))
print(f"report: {report}")
