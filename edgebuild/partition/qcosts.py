"""The partitioner's cost input from a quantised model: one cost layer per fused QModel layer
(the fused layers are the only places the generated firmware can stop)."""

from __future__ import annotations

import math

from ..errors import ModelError
from .costs import CostGraph, Layer


def costs_from_qmodel(qm, *, cycles_per_mac: float, f_cpu: float, power_w: float,
                      speedup: float = 100.0, weights_in_sram: bool = False) -> CostGraph:
    """A CostGraph from an int8 ``edgebuild.compress.qmodel.QModel``.

    Per layer: device time = cycles_per_mac * MACs / f_cpu, server time = device time / speedup,
    device energy = power_w * device time; tensors are int8 (one byte per element on the wire
    and in SRAM). ``act_bytes`` = the layer's input plus output buffers; its tables count as
    device memory only when ``weights_in_sram`` (on AVR they stay in flash)."""
    if cycles_per_mac <= 0 or f_cpu <= 0 or power_w < 0 or speedup <= 0:
        raise ModelError(f"device cost coefficients must be positive (cycles_per_mac {cycles_per_mac}, "
                         f"f_cpu {f_cpu}, power {power_w} W, speedup {speedup})",
                         field="target.energy.cycles_per_mac",
                         fix="set target.energy.cycles_per_mac, f_cpu and partition.server.speedup > 0")
    producer = {lay["output"]: lay["name"] for lay in qm.layers}
    inputs = {qm.input_name: qm.input_size}
    sizes = {qm.input_name: qm.input_size}
    layers = []
    for lay in qm.layers:
        out_bytes = math.prod(lay["out_shape"])
        sizes[lay["output"]] = out_bytes
        t_dev = cycles_per_mac * lay["macs"] / f_cpu
        tables = sum(int(qm.arrays[t].nbytes) for t in set(lay["tables"].values()))
        layers.append(Layer(
            name=lay["name"], preds=tuple(dict.fromkeys(producer.get(t, t) for t in lay["inputs"])),
            device_time_s=t_dev, server_time_s=t_dev / speedup, device_energy_j=t_dev * power_w,
            out_bytes=out_bytes, weight_bytes=tables if weights_in_sram else 0,
            act_bytes=sum(sizes[t] for t in dict.fromkeys(lay["inputs"])) + out_bytes,
            tensor=lay["output"]))
    return CostGraph(tuple(layers), inputs)
