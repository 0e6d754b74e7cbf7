#!/usr/bin/env bash
# Install everything, then run the main job on the embedded default data (Fashion-MNIST):
# pre-train the offline CLIP stand-in (cached after the first time) while the fashion10 domain
# classifier behind translation accuracy trains beside it, train LANIT at the quick preset
# (16 px, 1,500 iterations), evaluate it, and print the fashion10 table beside the committed
# cpu-preset runs of the fashion10-cpu campaign.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# One thread per process: on a shared 2-core machine a second torch thread made a LANIT
# iteration 20x slower (its barriers wait for the busy core; measured, README "Set up").
export OMP_NUM_THREADS=1
I2I=.venv/bin/i2ibench
RUN=runs/lanit-fashion10-quick-s777
$I2I datasets show fashion10
$I2I classifier train fashion10 --img-size 16 --no-progress &
CLASSIFIER=$!
$I2I vlm pretrain
wait "$CLASSIFIER"
$I2I run --method lanit --dataset fashion10 --preset quick --out "$RUN" --no-progress
$I2I table --compare tunit --dataset fashion10 --runs "$RUN" --runs results/campaigns/fashion10-cpu
