#!/usr/bin/env bash
# The whole test suite: formatting, clippy with -D warnings, and every test of the workspace in a
# release build (the WGSL tests run on lavapipe where there is no GPU), ONNX's node conformance cases
# (written by scripts/setup.sh into target/onnx-node-cases) and the S3 round trip against moto's
# server (installed by scripts/setup.sh into target/py-moto) included.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
export DISTK_MOTO_PYTHON="${DISTK_MOTO_PYTHON:-$PWD/target/py-moto/bin/python}"
export DISTK_ONNX_NODE_CASES="${DISTK_ONNX_NODE_CASES:-$PWD/target/onnx-node-cases}"
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
    XDG_RUNTIME_DIR="$(mktemp -d)"
    export XDG_RUNTIME_DIR
fi
cargo fmt --all -- --check
cargo clippy --release --locked --workspace --all-targets -- -D warnings
cargo test --release --locked --workspace
