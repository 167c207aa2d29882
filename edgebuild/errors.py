"""User-facing errors.

Every error a user can cause (bad recipe, missing file, model that does not fit, hostile ONNX)
is an ``EdgebuildError``. The CLI prints ``str(err)`` without a traceback and exits with
``err.exit_code`` (2). Messages name the file, the field and the fix.
"""

from __future__ import annotations


class EdgebuildError(Exception):
    """Base class of errors caused by user input. Printed without a traceback."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None,
                 fix: str | None = None):
        self.file = file
        self.field = field
        self.fix = fix
        parts = []
        if file:
            parts.append(str(file))
        if field:
            # "node 'conv1'", "tensor 'w'": already a quoted noun, not a recipe field name
            parts.append(field if "'" in field else f"field '{field}'")
        head = ": ".join(parts)
        text = f"{head}: {message}" if head else message
        if fix:
            text += f"\n  fix: {fix}"
        super().__init__(text)
        self.message = message


class ConfigError(EdgebuildError):
    """A recipe, target or pipeline file is malformed."""


class ModelError(EdgebuildError):
    """An ONNX model is unsupported, broken or hostile."""


class DatasetError(EdgebuildError):
    """A dataset is missing or malformed."""


class BudgetError(EdgebuildError):
    """A model does not fit a memory/energy/latency budget. Carries per-budget shortfalls."""

    def __init__(self, message: str, *, shortfalls: dict | None = None, **kw):
        self.shortfalls = shortfalls or {}
        super().__init__(message, **kw)


class ToolchainError(EdgebuildError):
    """A compiler, SCons, simulator or programmer is missing or failed."""


class VerificationError(EdgebuildError):
    """The device output does not match the reference."""
