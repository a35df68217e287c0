#!/bin/sh
# tools/run.sh: what `make run` starts: strongroomd on the embedded default
# (SoftHSM2 token made on first start in the state folder).
set -eu
BUILD=${1:-build}
STATE=${2:-$BUILD/state}
echo "strongroomd: state folder $STATE"
exec "$BUILD/bin/strongroomd" --state-dir "$STATE" --foreground
