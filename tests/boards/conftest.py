import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "firmware"))
from toymodel import load_target  # noqa: E402


def require_tools(target: dict, *roles: str) -> None:
    """Skip (naming the apt packages) when a tool the target names is not installed."""
    for section, role in roles:
        tool = target[section][role]
        if shutil.which(tool) is None:
            apt = " ".join(target[section].get("apt") or [])
            pytest.skip(f"{tool} not installed (apt-get install {apt})")


@pytest.fixture(scope="session")
def mega():
    target = load_target("mega2560")
    require_tools(target, ("toolchain", "cc"))
    if shutil.which("pkg-config") is None and not Path("/usr/include/simavr").exists():
        pytest.skip("simavr headers not installed (apt-get install simavr libsimavr-dev)")
    return target


@pytest.fixture(scope="session")
def m4_target():
    """The Cortex-M4 target without checking for tools (for the missing-tool tests)."""
    return load_target("netduinoplus2")


@pytest.fixture(scope="session")
def m4(m4_target):
    require_tools(m4_target, ("toolchain", "cc"), ("simulator", "executable"))
    return m4_target
