"""Build TensorFlow Lite Micro + CMSIS-NN for the Cortex-M4 into a static library, cached.

The flags are those of TFLM's own make build for ``TARGET=cortex_m_generic TARGET_ARCH=cortex-m4+fp
OPTIMIZED_KERNEL_DIR=cmsis_nn`` (tensorflow/lite/micro/tools/make/Makefile and
targets/cortex_m_generic_makefile.inc, ext_libs/cmsis_nn.inc):

- the interpreter ("core": tensorflow/lite/micro/*.cc, arena_allocator/, memory_planner/,
  tflite_bridge/ and the shared tensorflow/lite sources) at ``-Os``;
- kernels at ``-O2``: for every op of KERNEL_OPS the file of kernels/cmsis_nn/ when there is one
  (conv, depthwise_conv, fully_connected, add, pooling, softmax, pad, ...), the reference
  kernels/ file otherwise, plus the *_common.cc and helper files they share;
- all of CMSIS-NN's Source/**.c except the f16/f32 ones (ARM_NN_ENABLE_F16/F32=0) at ``-O2``;
- ``-mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard -mthumb``, ``-DCMSIS_NN
  -DKERNELS_OPTIMIZED_FOR_SPEED -DTF_LITE_STATIC_MEMORY``, ``-funsigned-char`` (TFLM's default
  SIGNED_CHAR=false), C++17 without RTTI/exceptions/thread-safe statics.

BUILD_TYPE ``release`` (TFLM's smallest: -DNDEBUG -DTF_LITE_STRIP_ERROR_STRINGS) is the default;
``release_with_logs`` keeps error strings and the interpreter's per-op profiler hooks (used for
per-layer counts). The library is cached under ``<build>/tflm-<key>/`` where key hashes the six
source revisions, the file list and every flag; objects are compiled with at most ``jobs`` parallel
compiler processes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from edgebuild.errors import ToolchainError

from .sources import Sources

# Kernel files (kernels/<name>.cc) compiled into the library: the ops of the five benchmark
# networks and the ones the TF converter commonly adds around them.
KERNEL_OPS = ("conv", "depthwise_conv", "fully_connected", "add", "pooling", "softmax", "reshape",
              "reduce", "pad", "quantize", "dequantize", "activations", "logistic", "mul",
              "concatenation", "strided_slice", "squeeze", "shape", "pack", "transpose")
KERNEL_SHARED = ("kernel_util", "micro_tensor_utils")
CORE_EXCLUDE = ("test_helpers.cc", "test_helper_custom_ops.cc", "mock_micro_graph.cc",
                "fake_micro_context.cc")
ARCH_FLAGS = ["-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-mthumb", "-mlittle-endian"]
COMMON_FLAGS = ["-fno-unwind-tables", "-fno-asynchronous-unwind-tables", "-ffunction-sections",
                "-fdata-sections", "-fmessage-length=0", "-fomit-frame-pointer", "-funsigned-char",
                "-DTF_LITE_STATIC_MEMORY", "-DTF_LITE_DISABLE_X86_NEON", "-DCMSIS_NN",
                "-DKERNELS_OPTIMIZED_FOR_SPEED", "-DTF_LITE_MCU_DEBUG_LOG", "-DCPU_M4=1",
                "-DARM_NN_ENABLE_F16=0", "-DARM_NN_ENABLE_F32=0", "-w"]
CXX_FLAGS = ["-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics"]
C_FLAGS = ["-std=c17"]
BUILD_TYPES = {"release": ["-DNDEBUG", "-DTF_LITE_STRIP_ERROR_STRINGS"],
               "release_with_logs": ["-DNDEBUG"], "default": []}
CORE_OPT, KERNEL_OPT = "-Os", "-O2"
CC, CXX, AR = "arm-none-eabi-gcc", "arm-none-eabi-g++", "arm-none-eabi-ar"


def include_dirs(src: Sources) -> list[Path]:
    return [src.tflm, src.flatbuffers / "include", src.gemmlowp, src.ruy, src.cmsis,
            src.cmsis / "CMSIS/Core/Include", src.cmsis_nn, src.cmsis_nn / "Include"]


def compile_flags(src: Sources, build_type: str, cmsis_nn: bool = True) -> list[str]:
    """Flags shared by the library and the firmware's C++ file (without the -O level).
    ``cmsis_nn`` False: TFLM's reference kernels only (no OPTIMIZED_KERNEL_DIR)."""
    common = COMMON_FLAGS if cmsis_nn else [f for f in COMMON_FLAGS if f != "-DCMSIS_NN"]
    return ARCH_FLAGS + common + BUILD_TYPES[build_type] + [f"-I{d}" for d in include_dirs(src)]


def source_files(src: Sources, cmsis_nn: bool = True) -> list[tuple[Path, str]]:
    """(file, optimisation level) of every library source, in a fixed order."""
    micro = src.tflm / "tensorflow/lite/micro"
    core = [f for d in ("", "arena_allocator", "memory_planner", "tflite_bridge")
            for f in sorted((micro / d).glob("*.cc"))
            if not f.name.endswith("_test.cc") and f.name not in CORE_EXCLUDE]
    shared = sorted(p for p in (src.tflm / "tensorflow").rglob("*.c*")
                    if p.suffix in (".cc", ".c")
                    and "tensorflow/lite/micro" not in p.as_posix()
                    and "tensorflow/lite/experimental" not in p.as_posix()
                    and p.name != "array.cc")
    kernels = []
    kdir = micro / "kernels"
    for op in KERNEL_OPS:
        optimised = kdir / "cmsis_nn" / f"{op}.cc"
        kernels.append(optimised if cmsis_nn and optimised.is_file() else kdir / f"{op}.cc")
        common = kdir / f"{op}_common.cc"
        if common.is_file():
            kernels.append(common)
    kernels += [kdir / f"{name}.cc" for name in KERNEL_SHARED]
    cmsis_nn = sorted(p for p in (src.cmsis_nn / "Source").rglob("*.c")
                      if cmsis_nn and not p.name.endswith(("_f16.c", "_f32.c"))
                      and p.name != "arm_nntables_flt.c")
    return ([(f, CORE_OPT) for f in core + shared] + [(f, KERNEL_OPT) for f in kernels]
            + [(f, KERNEL_OPT) for f in cmsis_nn])


def _check_tools() -> None:
    for tool in (CC, CXX, AR):
        if shutil.which(tool) is None:
            raise ToolchainError(f"'{tool}' was not found on PATH", field="toolchain",
                                 fix="sudo apt-get install gcc-arm-none-eabi binutils-arm-none-eabi "
                                     "libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib")


def build_library(src: Sources, build_dir: Path, build_type: str = "release", jobs: int = 2,
                  log=print, cmsis_nn: bool = True) -> Path:
    """Path of libtflm.a for ``src`` and ``build_type`` (built once, then taken from the cache)."""
    _check_tools()
    files = source_files(src, cmsis_nn)
    flags = compile_flags(src, build_type, cmsis_nn)
    key_data = {"revisions": src.revisions(), "build_type": build_type, "flags": flags,
                "cxx": CXX_FLAGS, "c": C_FLAGS,
                "files": [(str(f.relative_to(_root(src, f))), opt) for f, opt in files],
                "gcc": subprocess.run([CXX, "--version"], capture_output=True, text=True).stdout}
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:16]
    out = Path(build_dir) / f"tflm-{build_type}{'' if cmsis_nn else '-ref'}-{key}"
    lib = out / "libtflm.a"
    if lib.is_file():
        return lib
    obj_dir = out / "obj"
    obj_dir.mkdir(parents=True, exist_ok=True)

    def compile_one(item):
        path, opt = item
        rel = path.relative_to(_root(src, path))
        obj = obj_dir / (_tag(src, path) + "_" + str(rel).replace("/", "_") + ".o")
        if obj.is_file():
            return obj
        tool, lang = (CXX, CXX_FLAGS) if path.suffix == ".cc" else (CC, C_FLAGS)
        tmp = obj.with_suffix(".o.tmp")
        cmd = [tool, *lang, *flags, opt, "-c", str(path), "-o", str(tmp)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise ToolchainError(f"compiling {path} failed:\n{res.stderr[-3000:]}",
                                 file=str(path), fix="check that the checkouts are the revisions "
                                                     "docs/peers.md names")
        tmp.rename(obj)
        return obj

    log(f"building TFLM{' + CMSIS-NN' if cmsis_nn else ' (reference kernels)'} ({len(files)} files, {build_type}, -j{jobs}) into {out}")
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        objs = list(pool.map(compile_one, files))
    tmp_lib = out / "libtflm.a.tmp"
    tmp_lib.unlink(missing_ok=True)
    subprocess.run([AR, "rcs", str(tmp_lib), *map(str, objs)], check=True)
    (out / "key.json").write_text(json.dumps(key_data, indent=1, sort_keys=True))
    tmp_lib.rename(lib)
    return lib


def _root(src: Sources, path: Path) -> Path:
    for root in (src.tflm, src.cmsis_nn):
        if path.is_relative_to(root):
            return root
    raise ValueError(path)


def _tag(src: Sources, path: Path) -> str:
    return "tflm" if path.is_relative_to(src.tflm) else "cmsisnn"
