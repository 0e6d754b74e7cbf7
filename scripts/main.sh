#!/usr/bin/env bash
# Install everything, then run the main job on the embedded default data (Fashion-MNIST):
# train StarGAN v2 at the smoke preset, evaluate it, and print the tables.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
I2I=.venv/bin/i2ibench
$I2I datasets show fashion10
$I2I run --method stargan2 --dataset fashion10 --preset smoke --out runs/stargan2-fashion10-smoke-s777 --no-progress
$I2I table --compare tunit --table lanit-table1 --table reproduced --runs runs/stargan2-fashion10-smoke-s777
