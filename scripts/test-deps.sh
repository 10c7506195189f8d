#!/usr/bin/env bash
# Installs the Debian packages the tests run for real (Prometheus + promtool, Alertmanager + amtool, Chromium, strace, rclone,
# openssh-server and openssl for the SFTP offload destination, Swift, Slurm, Snakemake, a C compiler) if missing.
set -euo pipefail
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# The alert path end to end: Alertmanager and amtool.
command -v prometheus-alertmanager >/dev/null 2>&1 && command -v amtool >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v strace >/dev/null 2>&1 || need+=(strace)
command -v rclone >/dev/null 2>&1 || need+=(rclone)
[ -x /usr/sbin/sshd ] && command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-server)
# The SFTP server's hash command for verification (bench/sftp-server.ts).
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# An S3 object store on loopback (OpenStack Swift with s3api; its cache middleware needs memcached),
# a one-node Slurm cluster (slurm-wlm, munge) and Snakemake for the hand-off tests.
for c in swift-proxy-server:swift-proxy swift-object-server:swift-object swift-container-server:swift-container \
  swift-account-server:swift-account memcached:memcached slurmctld:slurm-wlm munged:munge snakemake:snakemake; do
  command -v "${c%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${c%%:*}" ] || need+=("${c##*:}")
done
# The C producer's tests compile sdk/c with sanitizers (libasan/libubsan come with gcc).
command -v gcc >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1 && command -v make >/dev/null 2>&1 || need+=(gcc g++ make libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages for the tests: ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "need root to apt-get install ${need[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The QC accuracy suite's independent reference (test/fixtures/qc_reference.py) runs on numpy, scipy,
# scikit-image and tifffile from the package index this machine reaches; the Python producer's suite
# (sdk/python) on pytest, reading the store back with tensorstore.
if ! python3 -c 'import numpy, scipy, skimage, tifffile, jsonschema, pytest, tensorstore' >/dev/null 2>&1; then
  echo "installing Python packages for the QC reference, the manifest schema check and sdk/python: numpy scipy scikit-image tifffile jsonschema pytest tensorstore"
  python3 -m pip install -q --retries 0 --disable-pip-version-check numpy scipy scikit-image tifffile jsonschema pytest tensorstore
fi
