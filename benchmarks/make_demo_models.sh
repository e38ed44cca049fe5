#!/usr/bin/env bash
# Train the demo models that `dlnd serve` shows when no run is given, and export them into
# src/dlnd/serve/demo_models/<name>/ (model.onnx + model_card.json, each under 5 MB).
#
#   DLND_DATA=/path/to/data benchmarks/make_demo_models.sh             # both models
#   DLND_DATA=/path/to/data benchmarks/make_demo_models.sh cifar10-cnn # only one
#
# Each training takes a few CPU minutes: small, fast versions of the recipes.
set -euo pipefail

: "${DLND_DATA:?set DLND_DATA to the folder with the mnist/ and cifar10/ data sets}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DLND="${DLND:-python -m dlnd}"
RUNS="$(mktemp -d)"
trap 'rm -rf "$RUNS"' EXIT

train_and_export() {
    local name="$1"; shift
    $DLND run "$name" --data-dir "$DLND_DATA" --out "$RUNS" --seed 0 "$@"
    local run_dir
    run_dir="$(ls -d "$RUNS/$name"/*/ | tail -n 1)"
    rm -rf "$ROOT/src/dlnd/serve/demo_models/$name"
    $DLND export "$run_dir" --format onnx --name "$name" \
        --out "$ROOT/src/dlnd/serve/demo_models/$name"
    chmod 644 "$ROOT/src/dlnd/serve/demo_models/$name"/*
}

names=("$@")
[ ${#names[@]} -eq 0 ] && names=(mnist-cnn cifar10-cnn)
for name in "${names[@]}"; do
    case "$name" in
        mnist-cnn) train_and_export mnist-cnn --epochs 10 --bf16 ;;
        cifar10-cnn) train_and_export cifar10-cnn --epochs 5 --width 32 ;;
        *) echo "unknown demo model $name (mnist-cnn or cifar10-cnn)" >&2; exit 2 ;;
    esac
done
