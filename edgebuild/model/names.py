"""Turn names from ONNX files (hostile data) into unique, valid C identifiers."""

from __future__ import annotations

import hashlib
import keyword
import re

_C_KEYWORDS = frozenset("""auto break case char const continue default do double else enum extern
float for goto if inline int long register restrict return short signed sizeof static struct
switch typedef union unsigned void volatile while _Bool _Complex _Imaginary _Alignas _Alignof
_Atomic _Generic _Noreturn _Static_assert _Thread_local bool true false asm main""".split())
MAX_LEN = 48


def c_identifier(name: str, taken: set) -> str:
    """A valid C identifier for ``name``, unique within ``taken`` (which it is added to).

    Characters outside [A-Za-z0-9_] become '_', runs of '_' collapse, a leading digit or a
    reserved word gets a prefix, long names are cut and suffixed with a hash of the original,
    and clashes get a numeric suffix. Identifiers starting with '_' + capital or '__' (reserved
    in C) are avoided.
    """
    ident = re.sub(r"[^A-Za-z0-9_]", "_", str(name))
    ident = re.sub(r"_+", "_", ident).strip("_") or "t"
    if ident[0].isdigit() or ident in _C_KEYWORDS or keyword.iskeyword(ident):
        ident = "t_" + ident
    if len(ident) > MAX_LEN:
        digest = hashlib.sha1(str(name).encode("utf-8", "surrogatepass")).hexdigest()[:8]
        ident = f"{ident[:MAX_LEN - 9]}_{digest}"
    base, k = ident, 1
    while ident in taken:
        ident, k = f"{base}_{k}", k + 1
    taken.add(ident)
    return ident
