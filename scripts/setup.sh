#!/usr/bin/env bash
# Installs what distk-gpu needs on a fresh Debian machine: a Vulkan driver (Mesa's lavapipe where
# there is no GPU driver) and the loader. Rust (edition 2024, 1.85 or newer) must be present.
set -euo pipefail

have_vulkan_driver() {
    ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1 && ldconfig -p | grep -q libvulkan.so.1
}

if ! have_vulkan_driver; then
    echo "setup: installing a Vulkan driver (mesa-vulkan-drivers: lavapipe) and the loader" >&2
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo is missing; install Rust 1.85 or newer (https://rustup.rs) and run this again" >&2
    exit 1
fi
