#!/usr/bin/env bash
# Installs everything edgebuild needs on a Debian machine: the system toolchains (avr-gcc, avr-libc,
# simavr and its library, avrdude, gcc), the Fashion-MNIST package, and the Python package with its
# pinned dependencies in ./.venv. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(gcc libc6-dev make pkg-config gcc-avr avr-libc binutils-avr simavr libsimavr-dev libelf-dev
              avrdude dataset-fashion-mnist python3-venv
              gcc-arm-none-eabi binutils-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
              libstdc++-arm-none-eabi-newlib)   # the last: bench/peers.py builds TFLite Micro (C++)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# python3-venv is only needed where the interpreter lacks a working venv module (Debian's own python3).
if python3 -c "import venv, ensurepip" 2>/dev/null; then
  missing=("${missing[@]/python3-venv}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test,cluster]"
# --no-deps: its cloudpickle<3 pin (AWS variant only) conflicts with joblib; see pyproject.toml.
.venv/bin/python -m pip install -q --no-deps "hydra-ray-launcher==1.2.2"
echo "edgebuild installed: .venv/bin/edgebuild"
