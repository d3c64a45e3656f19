#!/bin/bash
# The four variants of the two surprises: inference at 572 px channels_last and a training step at 188 px.
cd /work/wt-profile
export PYTHONPATH=$PWD
for v in paper instancenorm nearest bilinear; do
  echo "$v infer start $(date -u +%T) load $(cat /proc/loadavg)"
  /work/main/.venv/bin/python -m unet_bench profile $v --size 572 --mode infer --channels-last --min-run-time 2 \
     --plot profiles/${v}_infer_572_cl.png --json > profiles/${v}_infer_572_cl.json 2>profiles/${v}_infer.err
  echo "$v infer end $(date -u +%T) load $(cat /proc/loadavg) rc $?"
  echo "$v train start $(date -u +%T) load $(cat /proc/loadavg)"
  /work/main/.venv/bin/python -m unet_bench profile $v --size 188 --mode train --min-run-time 2 --steps 5 \
     --plot profiles/${v}_train_188.png --json > profiles/${v}_train_188.json 2>profiles/${v}_train.err
  echo "$v train end $(date -u +%T) load $(cat /proc/loadavg) rc $?"
done
