"""Rule verify (python3 verify.py STORE_DIR VERIFIED_JSON; SPIMSTREAM_DESTINATION in the environment): copy the store from the destination (rclone) and check it against its manifest.

Every file the manifest lists must be there with its size and SHA-256; anything else fails the rule
(and so the workflow) with one line naming the file. The destination string may hold credentials:
it is passed to rclone only, never printed.
"""
import hashlib
import json
import os
import subprocess
import sys

out, verified_json = sys.argv[1], sys.argv[2]
dest = os.environ["SPIMSTREAM_DESTINATION"]
env = dict(os.environ)
args = ["rclone", "copy", dest, out, "--retries", "3"]
# rclone's s3 backend refuses AWS_CA_BUNDLE; hand it over as --ca-cert, as spimstream does.
bundle = env.pop("AWS_CA_BUNDLE", None)
if bundle:
    args += ["--ca-cert", bundle]
r = subprocess.run(args, env=env, capture_output=True, text=True)
if r.returncode != 0:
    sys.exit(f"verify: rclone copy from the destination failed (exit {r.returncode}): {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ''}")
manifest = json.load(open(os.path.join(out, "spimstream-manifest.json")))
checked, total = 0, 0
for f in manifest["files"]:
    p = os.path.join(out, f["path"])
    if not os.path.exists(p):
        sys.exit(f"verify: {f['path']} is missing at the destination")
    size = os.path.getsize(p)
    if size != f["bytes"]:
        sys.exit(f"verify: {f['path']} is {size} bytes at the destination, the manifest says {f['bytes']}")
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    if h.hexdigest() != f["sha256"]:
        sys.exit(f"verify: {f['path']} differs from the manifest (SHA-256)")
    checked += 1
    total += size
json.dump({"store": os.path.basename(out), "files": checked, "bytes": total, "frames": manifest.get("frames")},
          open(verified_json, "w"), indent=1)
print(f"verify: {checked} files, {total} bytes match the manifest")
