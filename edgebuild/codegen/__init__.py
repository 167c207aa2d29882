"""C code generation: QModel + memory plan -> portable C99 (see generator.py)."""

from .generator import generate

__all__ = ["generate"]
