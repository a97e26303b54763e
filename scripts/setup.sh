#!/usr/bin/env bash
# Installs what distk-gpu needs on a fresh Debian machine: a Vulkan driver (Mesa's lavapipe where
# there is no GPU driver) and the loader; and, for the ONNX conformance test, a Python venv with onnx
# (target/py-onnx) and ONNX's node test cases generated from it (target/onnx-node-cases). Rust
# (edition 2024, 1.85 or newer) must be present. Each step runs only when its result is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

have_vulkan_driver() {
    # A driver manifest in either folder (one of them is usually empty) and the loader.
    { compgen -G '/usr/share/vulkan/icd.d/*.json' || compgen -G '/etc/vulkan/icd.d/*.json'; } >/dev/null &&
        ldconfig -p | grep -q libvulkan.so.1
}

if ! have_vulkan_driver; then
    echo "setup: installing a Vulkan driver (mesa-vulkan-drivers: lavapipe) and the loader" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null
fi

# The ONNX node conformance cases (onnx-import/tests/onnx_conformance.rs): onnx and numpy pinned
# (with their own dependencies) in a venv; no TensorFlow or PyTorch.
PY_PACKAGES="onnx==1.23.2 numpy==2.4.6 protobuf==7.36.2 ml_dtypes==0.7.0 typing_extensions==4.16.0"
VENV=target/py-onnx
CASES=target/onnx-node-cases
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "setup: installing python3 and python3-venv (for the ONNX conformance cases)" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
fi
if [ "$(cat "$VENV/.installed" 2>/dev/null)" != "$PY_PACKAGES" ] || ! "$VENV/bin/python" -c 'import onnx, numpy' >/dev/null 2>&1; then
    echo "setup: creating $VENV with $PY_PACKAGES" >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-cache-dir $PY_PACKAGES
    echo "$PY_PACKAGES" >"$VENV/.installed"
fi
STAMP="$PY_PACKAGES $(sha256sum scripts/onnx_node_cases.py | cut -d' ' -f1)"
if [ "$(cat "$CASES/.stamp" 2>/dev/null)" != "$STAMP" ] || [ ! -f "$CASES/manifest.json" ]; then
    "$VENV/bin/python" scripts/onnx_node_cases.py "$CASES"
    echo "$STAMP" >"$CASES/.stamp"
fi

# A real S3-compatible server for the object-storage test (tests/object_storage.rs): moto's server
# mode, pinned in scripts/requirements/moto-server.txt, in its own venv (target/py-moto).
MOTO_VENV=target/py-moto
MOTO_STAMP="$(sha256sum scripts/requirements/moto-server.txt | cut -d' ' -f1)"
if [ "$(cat "$MOTO_VENV/.installed" 2>/dev/null)" != "$MOTO_STAMP" ] || ! "$MOTO_VENV/bin/python" -c 'import moto.server, boto3' >/dev/null 2>&1; then
    echo "setup: creating $MOTO_VENV with moto's S3 server (scripts/requirements/moto-server.txt)" >&2
    rm -rf "$MOTO_VENV"
    python3 -m venv "$MOTO_VENV"
    "$MOTO_VENV/bin/pip" install -q --disable-pip-version-check --no-cache-dir -r scripts/requirements/moto-server.txt
    echo "$MOTO_STAMP" >"$MOTO_VENV/.installed"
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo is missing; install Rust 1.85 or newer (https://rustup.rs) and run this again" >&2
    exit 1
fi
