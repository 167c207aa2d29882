"""The cost input of the partitioner: a DAG of layers with device/server costs, independent of
any stage, plus the link model. ``costs_from_graph`` derives it from an edgebuild.model Graph."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import ModelError


@dataclass(frozen=True)
class Layer:
    """One layer (graph node) of the cost DAG.

    ``preds``: names of the layers or graph inputs whose output this layer reads.
    ``out_bytes``: bytes of its output tensor(s) on the wire. ``weight_bytes`` and ``act_bytes``
    (peak activation buffers while it runs) make up its ``device_memory`` need; the head of a
    split needs sum(weight_bytes) + max(act_bytes) over its layers."""

    name: str
    preds: tuple[str, ...]
    device_time_s: float
    server_time_s: float
    device_energy_j: float
    out_bytes: int
    weight_bytes: int = 0
    act_bytes: int = 0
    tensor: str = ""

    @property
    def device_memory(self) -> int:
        """Bytes this layer needs on the device: its weights plus its peak activations."""
        return self.weight_bytes + self.act_bytes

    @property
    def out_tensor(self) -> str:
        """Name of the output tensor (the layer name when not given)."""
        return self.tensor or self.name


@dataclass(frozen=True)
class CostGraph:
    """Layers in topological order plus the graph inputs (name -> bytes), which live on the
    device (the sensor side)."""

    layers: tuple[Layer, ...]
    inputs: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        known = set(self.inputs)
        for layer in self.layers:
            if layer.name in known:
                raise ModelError(f"duplicate layer or input name '{layer.name}'", field="layers",
                                 fix="give every layer a unique name")
            for p in layer.preds:
                if p not in known:
                    raise ModelError(f"layer '{layer.name}' reads '{p}', which is neither a graph "
                                     "input nor an earlier layer", field="layers",
                                     fix="list layers in topological order and name every input")
            known.add(layer.name)

    @property
    def names(self) -> list[str]:
        """Layer names in topological order."""
        return [layer.name for layer in self.layers]

    def tensor_bytes(self, name: str) -> int:
        """Wire bytes of the output of a layer or of a graph input."""
        if name in self.inputs:
            return int(self.inputs[name])
        return self.layer(name).out_bytes

    def layer(self, name: str) -> Layer:
        """The layer called ``name``."""
        return self._index()[name]

    def _index(self) -> dict[str, Layer]:
        idx = self.__dict__.get("_idx")
        if idx is None:
            idx = {layer.name: layer for layer in self.layers}
            object.__setattr__(self, "_idx", idx)
        return idx

    def consumers(self) -> dict[str, list[str]]:
        """Layer or input name -> names of the layers that read its output."""
        out: dict[str, list[str]] = {n: [] for n in [*self.inputs, *self.names]}
        for layer in self.layers:
            for p in dict.fromkeys(layer.preds):
                out[p].append(layer.name)
        return out

    def is_chain(self) -> bool:
        """True for a single input feeding a straight line of layers."""
        prev = list(self.inputs)
        if len(prev) != 1:
            return False
        for layer in self.layers:
            if tuple(dict.fromkeys(layer.preds)) != (prev[0],):
                return False
            prev = [layer.name]
        return True

    def ancestors(self, name: str) -> set[str]:
        """``name`` and every layer it depends on (graph inputs excluded)."""
        seen, stack = set(), [name]
        while stack:
            n = stack.pop()
            if n in seen or n in self.inputs:
                continue
            seen.add(n)
            stack.extend(self.layer(n).preds)
        return seen


@dataclass(frozen=True)
class Link:
    """The device-server link: bandwidth, one-way latency per transfer, device energy per byte."""

    bandwidth_bps: float
    latency_ms: float = 0.0
    energy_per_byte_uj: float = 0.0

    @classmethod
    def of(cls, link) -> "Link":
        """A Link from any object with the same attributes (e.g. recipe.Link)."""
        if isinstance(link, cls):
            return link
        return cls(float(link.bandwidth_bps), float(link.latency_ms),
                   float(link.energy_per_byte_uj))

    def with_bandwidth(self, bandwidth_bps: float) -> "Link":
        """This link at another bandwidth."""
        return Link(float(bandwidth_bps), self.latency_ms, self.energy_per_byte_uj)


def costs_from_graph(graph, *, cycles_per_mac: float, f_cpu: float, power_w: float,
                     speedup: float = 100.0, cycles_per_byte: float = 0.0,
                     element_bytes: int = 1, weights_in_sram: bool = False) -> CostGraph:
    """A CostGraph from an edgebuild.model Graph, using ``graph.cost()`` per node.

    device time = (macs*cycles_per_mac + (bytes_read+bytes_written)*cycles_per_byte) / f_cpu;
    server time = device time / speedup; device energy = device time * power_w. Tensors are
    ``element_bytes`` per element on the wire and in SRAM (1 for int8). Weights count towards the
    device memory need only when ``weights_in_sram`` (on an Uno they sit in flash)."""
    if cycles_per_mac < 0 or f_cpu <= 0 or power_w < 0 or speedup <= 0:
        raise ModelError("cycles_per_mac, power_w must be >= 0 and f_cpu, speedup > 0",
                         field="partition.server.speedup", fix="use positive cost coefficients")
    producer = graph.producer()

    def nbytes(t):
        return int(math.prod(graph.shapes[t])) * element_bytes

    inputs = {t: nbytes(t) for t in graph.inputs}
    layers = []
    for node, row in zip(graph.nodes, graph.cost()):
        preds = tuple(dict.fromkeys(
            producer[t].name if t in producer else t
            for t in node.inputs if t and (t in producer or t in inputs)))
        acts = [t for t in dict.fromkeys(node.inputs) if t in producer or t in inputs]
        outs = [t for t in node.outputs if t]
        out_bytes = sum(nbytes(t) for t in outs)
        t_dev = (row["macs"] * cycles_per_mac
                 + (row["bytes_read"] + row["bytes_written"]) * cycles_per_byte) / f_cpu
        layers.append(Layer(
            name=node.name, preds=preds, device_time_s=t_dev, server_time_s=t_dev / speedup,
            device_energy_j=t_dev * power_w, out_bytes=out_bytes,
            weight_bytes=row["params"] * element_bytes if weights_in_sram else 0,
            act_bytes=sum(nbytes(t) for t in acts) + out_bytes, tensor=",".join(outs)))
    return CostGraph(tuple(layers), inputs)
