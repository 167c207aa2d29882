"""edgebuild: turn a trained neural network into verified microcontroller firmware.

    import edgebuild
    r = edgebuild.build("recipes/mnist_uno.yaml", ["verify.samples=50"])
    print(r.accuracy.device, r.memory.flash_bytes)

The public API (edgebuild/api.py): `build`, `load_recipe`, `sweep`, `Report`, `check_measured`;
the errors in edgebuild.errors. Kept import-light on purpose: the no-op rebuild path imports this
package, so nothing heavy (numpy, onnx, hydra, SCons, matplotlib) is imported at module level,
and the API itself is imported on first use.
"""

__version__ = "0.1.0"

_API = ("build", "load_recipe", "sweep", "check_measured", "Report", "Figures", "Stage", "SweepResult")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from edgebuild import api

        return getattr(api, name)
    raise AttributeError(f"module 'edgebuild' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API])
