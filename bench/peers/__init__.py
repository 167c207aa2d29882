"""Helpers of bench/peers.py: TFLite Micro + CMSIS-NN built from upstream sources, run on edgebuild's
harness in QEMU beside edgebuild's own firmware (see bench/peers.py and docs/peers.md)."""
