#!/usr/bin/env bash
# Install everything, then run the main job on the embedded default data (Fashion-MNIST):
# pre-train the offline CLIP stand-in (cached after the first time), train LANIT at the smoke
# preset, evaluate it, and print the fashion10 table beside the committed cpu-preset runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
I2I=.venv/bin/i2ibench
RUN=runs/lanit-fashion10-smoke-s777
$I2I datasets show fashion10
$I2I vlm pretrain
$I2I run --method lanit --dataset fashion10 --preset smoke --out "$RUN" --no-progress
$I2I table --compare tunit --dataset fashion10 --runs "$RUN" --runs results/cpu
