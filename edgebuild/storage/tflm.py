"""An independent estimate of the tensor arena TensorFlow Lite Micro would need for the same int8 model.

Computed the way TFLM's MicroAllocator does it (tensorflow/lite/micro/micro_allocator.cc,
memory_planner/greedy_memory_planner.cc, docs/memory_management.md):

- **head (non-persistent)**: every activation tensor *including the model's input and output* (TFLM
  keeps them in the arena; edgebuild's harness owns them outside it) is live from the operator that
  creates it (the input: from operator 0) to its last consumer (the output: to the last operator),
  each rounded up to ``kBufferAlignment`` = 16 bytes, placed by the GreedyMemoryPlanner (largest
  first, first fit among buffers whose lifetimes overlap) - :func:`edgebuild.storage.arena.greedy_by_size`.
- **tail (persistent)**: one ``TfLiteEvalTensor`` per tensor of the graph (24 bytes on a 32-bit MCU:
  docs/memory_management.md records 360 bytes for 15 tensors), one ``NodeAndRegistration`` per
  operator (56 bytes: 392 bytes for 7 operators, same record), and for per-channel conv and
  depthwise conv the ``per_channel_output_multiplier`` and ``per_channel_output_shift`` arrays the
  kernels allocate with ``AllocatePersistentBuffer`` (2 x 4 bytes per output channel, conv.cc /
  depthwise_conv.cc).

Not counted (so the estimate is a lower bound on a real TFLM build): the kernels' OpData structs
(tens of bytes each; the same record shows 136 bytes for 5), CMSIS-NN scratch buffers (im2col; the
reference kernels need none), and the Reshape operators a converted ``.tflite`` holds before dense
layers (edgebuild lowers them to aliases; in TFLM each copies its input).
"""

from __future__ import annotations

from edgebuild.storage.arena import Buffer, align_up, extent, greedy_by_size

BUFFER_ALIGNMENT = 16            # micro_allocator.cc: kBufferAlignment
EVAL_TENSOR_BYTES = 24           # docs/memory_management.md: 360 B / 15 TfLiteEvalTensor
NODE_AND_REGISTRATION_BYTES = 56  # docs/memory_management.md: 392 B / 7 NodeAndRegistration
PER_CHANNEL_BYTES = 8            # int32 multiplier + int32 shift per output channel (conv, depthwise)


def tflm_buffers(layers: list[dict], input_name: str, input_bytes: int) -> list[Buffer]:
    """The arena buffers TFLM would plan for lowered int8 ``layers`` (model input and output included)."""
    bufs = {input_name: [input_bytes, 0, 0]}
    last = len(layers) - 1
    for i, lay in enumerate(layers):
        for t in lay["inputs"]:
            if t in bufs:
                bufs[t][2] = i
        n = 1
        for d in lay["out_shape"]:
            n *= int(d)
        bufs[lay["output"]] = [n, i, i]
    bufs[layers[-1]["output"]][2] = last
    return [Buffer(name, size, first, end) for name, (size, first, end) in bufs.items()]


def tflm_arena_estimate(layers: list[dict], input_name: str, input_bytes: int) -> dict:
    """{"head", "tail", "total"} bytes and how each was computed (see the module docstring)."""
    buffers = tflm_buffers(layers, input_name, input_bytes)
    head = extent(buffers, greedy_by_size(buffers, BUFFER_ALIGNMENT), BUFFER_ALIGNMENT)
    weighted = [lay for lay in layers if lay["kind"] in ("conv", "dense")]
    tensors = len(buffers) + 2 * len(weighted)          # activations + a weight and a bias per conv/dense
    per_channel = sum(PER_CHANNEL_BYTES * int(lay["out_shape"][0]) for lay in weighted if lay["kind"] == "conv")
    tail = (align_up(tensors * EVAL_TENSOR_BYTES, BUFFER_ALIGNMENT)
            + align_up(len(layers) * NODE_AND_REGISTRATION_BYTES, BUFFER_ALIGNMENT) + per_channel)
    return {"head": head, "tail": tail, "total": head + tail, "tensors": tensors, "operators": len(layers),
            "per_channel_bytes": per_channel,
            "basis": "TFLM GreedyMemoryPlanner over all activations incl. input/output, 16-byte aligned, "
                     "+ 24 B/TfLiteEvalTensor + 56 B/NodeAndRegistration + 8 B/conv output channel; "
                     "OpData structs, CMSIS-NN scratch and Reshape copies not counted"}
