"""edgebuild: turn a trained neural network into verified microcontroller firmware.

Kept import-light on purpose: the no-op rebuild path imports this package, so nothing heavy
(numpy, onnx, hydra, SCons, matplotlib) may be imported at module level here.
"""

__version__ = "0.1.0"
