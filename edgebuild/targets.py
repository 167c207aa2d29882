"""Board definitions (targets/*.yaml) as a pydantic schema.

A board is data: stages read these fields and never test a board's name. Adding a board of an
existing architecture is one YAML file.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Memory(_Strict):
    size: int = Field(gt=0, description="Capacity in bytes.")
    reserved: int = Field(0, ge=0, description="Bytes not available to the firmware (e.g. a bootloader).")
    base: int | None = Field(None, ge=0, description="Base address of the memory, where the architecture needs it.")
    attribute: str | None = Field(
        None, description="How generated C places constant data here: progmem, eemem, const.")
    data_window: int | None = Field(
        None, gt=0, description="Constant data must end within this many bytes of the start of "
                                "the memory to be readable in place (AVR pgm_read_* take 16-bit "
                                "addresses: 65536). Checked after linking; needs toolchain.nm.")

    @property
    def usable(self) -> int:
        return self.size - self.reserved


class Toolchain(_Strict):
    cc: str = Field(description="C compiler executable, e.g. avr-gcc or gcc.")
    objcopy: str | None = Field(None, description="objcopy executable (.hex/.eep generation).")
    size: str | None = Field(None, description="size executable used for the memory report.")
    nm: str | None = Field(None, description="nm executable (symbol addresses for memories.*.data_window).")
    apt: list[str] = Field(default_factory=list, description="Debian packages that provide the toolchain.")
    cflags: list[str] = Field(default_factory=list, description="Compiler flags.")
    ldflags: list[str] = Field(default_factory=list, description="Linker flags.")
    defines: dict[str, str | int] = Field(
        default_factory=dict, description="Preprocessor macros for device builds (e.g. the register the "
                                          "harness and the simulator use for timing marks).")


class Simulator(_Strict):
    kind: Literal["simavr", "native", "qemu"] = Field(description="How firmware is run for verification.")
    mcu: str | None = Field(None, description="Part name the simulator knows (simavr -m).")
    machine: str | None = Field(None, description="QEMU machine model (qemu-system-* -M).")
    executable: str | None = Field(None, description="Simulator executable, e.g. qemu-system-arm.")
    apt: list[str] = Field(default_factory=list, description="Debian packages that provide the simulator.")


class Programmer(_Strict):
    tool: Literal["avrdude", "none"] = Field("none", description="Flashing tool.")
    part: str | None = Field(None, description="avrdude part id (-p), e.g. m328p.")
    protocol: str | None = Field(None, description="avrdude programmer id (-c), e.g. arduino.")
    baud: int | None = Field(None, gt=0, description="Bootloader baud rate (-b).")


class Uart(_Strict):
    baud: int = Field(115200, gt=0, description="UART baud rate of the verification link.")
    driver: Literal["stm32-usart"] | None = Field(
        None, description="Register interface of the UART (ARM harness; AVR uses UART0).")
    base: int | None = Field(None, ge=0, description="Base address of the UART's registers.")


class Energy(_Strict):
    supply_v: float = Field(gt=0, description="Supply voltage in volts.")
    active_current_ma: float = Field(ge=0, description="Active-mode current at f_cpu in mA.")
    cycles_per_access: dict[str, float] = Field(
        default_factory=dict, description="Cycles per byte read, per memory (flash, sram, eeprom).")
    cycles_per_mac: float | None = Field(
        None, gt=0, description="Whole-model device cycles per multiply-accumulate, as measured on a "
                                "reference build; the partition stage's device cost per layer.")
    cycle_model: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Cycles per fused layer kind (conv, dense, maxpool, avgpool) as "
                                          "a linear model: feature -> cycles per unit (features: "
                                          "edgebuild.compress.energy.FEATURES); fitted by "
                                          "`python bench/compress.py calibrate`.")
    code_bytes: dict[str, float] = Field(
        default_factory=dict, description="Estimated flash bytes of code: 'one' (harness and runtime) plus "
                                          "per fused layer 'conv', 'conv_border' (extra for padded "
                                          "convs), 'dense', 'dense_sparse'; used by the compress stage.")
    sram_overhead_bytes: int = Field(
        0, ge=0, description="SRAM besides model input, output and activation arena (harness statics "
                             "and stack), used by the compress stage's search.")
    conv_pad_copy: bool = Field(
        False, description="The codegen backend copies the input of a conv with border windows into a "
                           "zero-point-padded static buffer (AVR, up to "
                           "edgebuild.codegen.generator.PAD_SCRATCH_MAX bytes); the compress stage "
                           "counts that buffer in its SRAM estimate.")
    dsp_scratch: bool = Field(
        False, description="The codegen backend is the Cortex-M4 one, whose SMLAD kernels keep static "
                           "scratch buffers (im2col columns, a padded depthwise plane, pooled maxima: "
                           "edgebuild.codegen.generator.arm_scratch_bytes); the compress stage counts "
                           "them in its SRAM estimate.")
    cycle_model_error: float = Field(
        0.0, ge=0, lt=1, description="Relative error of the cycle model on a whole model seen in calibration; "
                                     "the multi-target search aims this far under latency and energy "
                                     "budgets so the measured firmware meets them.")


class Target(_Strict):
    name: str = Field(description="Board id, the file name under targets/ without .yaml.")
    description: str = Field("", description="Human-readable board description.")
    arch: Literal["avr", "host", "arm"] = Field(description="Instruction-set family; selects the codegen backend.")
    mcu: str = Field(description="Microcontroller part (avr-gcc -mmcu), or 'native'.")
    f_cpu: int = Field(ge=0, description="Clock frequency in Hz (0 for the host).")
    memories: dict[Literal["flash", "sram", "eeprom", "external"], Memory] = Field(
        description="Memories by medium; flash and sram are required.")
    toolchain: Toolchain
    simulator: Simulator
    programmer: Programmer = Field(default_factory=Programmer)
    uart: Uart = Field(default_factory=Uart)
    energy: Energy

    @model_validator(mode="after")
    def _needs_flash_and_sram(self):
        missing = [m for m in ("flash", "sram") if m not in self.memories]
        if missing:
            raise ValueError(f"memories must declare {', '.join(missing)}")
        return self
