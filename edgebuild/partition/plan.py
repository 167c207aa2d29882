"""Cost accounting of one split: which layers run on the device, what crosses the link, and
what that costs. The single place where latency, energy and memory of a split are computed."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ModelError
from .costs import CostGraph, Link

OBJECTIVES = ("latency", "energy")


@dataclass(frozen=True)
class Plan:
    """A split and its cost breakdown.

    ``device``: layer names run on the device (closed under predecessors); ``cut_layers``: the
    layers/graph inputs whose output is sent to the server (each once); ``cut``: those tensors. Latency = device time +
    transfer (bytes*8/bandwidth + link latency, when anything is sent) + server time. Device
    energy = compute energy + bytes sent * energy per byte. The result is taken where it is
    computed (returning it is not costed, as in Neurosurgeon)."""

    device: frozenset[str]
    cut: tuple[str, ...]
    cut_layers: tuple[str, ...]
    sent_bytes: int
    device_time_s: float
    transfer_s: float
    server_time_s: float
    compute_energy_j: float
    transmit_energy_j: float
    device_memory: int
    objective: str
    exact: bool = True

    @property
    def latency_s(self) -> float:
        """End-to-end latency of one inference."""
        return self.device_time_s + self.transfer_s + self.server_time_s

    @property
    def device_energy_j(self) -> float:
        """Device energy of one inference: compute plus transmission."""
        return self.compute_energy_j + self.transmit_energy_j

    @property
    def value(self) -> float:
        """The objective's value (seconds or joules)."""
        return self.latency_s if self.objective == "latency" else self.device_energy_j

    def to_dict(self) -> dict:
        """JSON-serialisable summary (stable keys)."""
        return {"device": sorted(self.device), "cut": list(self.cut),
                "cut_layers": list(self.cut_layers),
                "sent_bytes": self.sent_bytes, "latency_s": self.latency_s,
                "device_time_s": self.device_time_s, "transfer_s": self.transfer_s,
                "server_time_s": self.server_time_s, "device_energy_j": self.device_energy_j,
                "compute_energy_j": self.compute_energy_j,
                "transmit_energy_j": self.transmit_energy_j,
                "device_memory": self.device_memory, "objective": self.objective,
                "exact": self.exact}


def check_objective(objective: str) -> None:
    """Raise a ConfigError-like ModelError for an unknown objective."""
    if objective not in OBJECTIVES:
        raise ModelError(f"unknown objective '{objective}'", field="partition.objective",
                         fix="use latency or energy")


def evaluate(costs: CostGraph, device, link: Link, objective: str = "latency",
             exact: bool = True) -> Plan:
    """The Plan of running the layers in ``device`` on the device and the rest on the server.

    Raises ModelError if ``device`` names an unknown layer or is not closed under predecessors
    (data would flow from the server back to the device)."""
    check_objective(objective)
    device = frozenset(device)
    unknown = device - set(costs.names)
    if unknown:
        raise ModelError(f"unknown layer(s) {sorted(unknown)}", field="partition.at",
                         fix="name a node of the model")
    t_dev = t_srv = e_dev = 0.0
    weights = act = 0
    for layer in costs.layers:
        if layer.name in device:
            missing = [p for p in layer.preds if p not in device and p not in costs.inputs]
            if missing:
                raise ModelError(f"layer '{layer.name}' on the device reads {missing} from the "
                                 "server", field="partition.at",
                                 fix="keep every predecessor of a device layer on the device")
            t_dev += layer.device_time_s
            e_dev += layer.device_energy_j
            weights += layer.weight_bytes
            act = max(act, layer.act_bytes)
        else:
            t_srv += layer.server_time_s
    sent = {p for layer in costs.layers if layer.name not in device for p in layer.preds
            if p in device or p in costs.inputs}
    cut_layers = tuple(n for n in [*costs.inputs, *costs.names] if n in sent)
    cut = tuple(t for n in cut_layers
                for t in ([n] if n in costs.inputs else costs.layer(n).out_tensor.split(",")))
    nbytes = sum(costs.tensor_bytes(n) for n in cut_layers)
    transfer = nbytes * 8.0 / link.bandwidth_bps + link.latency_ms * 1e-3 if cut else 0.0
    return Plan(device=device, cut=cut, cut_layers=cut_layers, sent_bytes=nbytes, device_time_s=t_dev,
                transfer_s=transfer, server_time_s=t_srv, compute_energy_j=e_dev,
                transmit_energy_j=nbytes * link.energy_per_byte_uj * 1e-6,
                device_memory=weights + act, objective=objective, exact=exact)

