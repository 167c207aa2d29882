"""Write small .tflite files without TensorFlow: the flatbuffer builder functions of the `tflite`
package (generated from TFLite's schema.fbs) over `flatbuffers`. Test fixtures only.

    w = Writer(seed=0)
    x = w.input([1, 8, 8, 2], scale=0.05, zp=-3)        # int8 (or float: scale=None)
    y = w.conv(x, 4, (3, 3), act="RELU")
    ...
    w.save(path, inputs=[x], outputs=[y])

Weights are seeded random int8 (per-channel symmetric scales), biases int32; every output scale is
set from the layer's fan-in so activations spread over the int8 range without saturating.
"""

from __future__ import annotations

import math

import numpy as np

ACT = {None: 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3, "TANH": 4}
PAD = {"SAME": 0, "VALID": 1}


class Writer:
    def __init__(self, seed: int = 0, quant: bool = True):
        self.rng = np.random.default_rng(seed)
        self.quant = quant
        self.tensors: list[dict] = []
        self.buffers: list[bytes] = [b""]
        self.ops: list[tuple] = []
        self.codes: list[int] = []

    # -- tensors -------------------------------------------------------------------------------
    def tensor(self, shape, dtype="int8", data=None, scale=None, zp=None, qdim=0, name=None, signature=None) -> int:
        buf = 0
        if data is not None:
            self.buffers.append(np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<")).tobytes())
            buf = len(self.buffers) - 1
        self.tensors.append({"shape": list(shape), "dtype": dtype, "buffer": buf, "name": name or f"t{len(self.tensors)}",
                             "scale": None if scale is None else np.atleast_1d(np.asarray(scale, np.float32)),
                             "zp": None if zp is None else np.atleast_1d(np.asarray(zp, np.int64)), "qdim": qdim,
                             "signature": signature})
        return len(self.tensors) - 1

    def input(self, shape, scale=0.05, zp=-3, signature=None) -> int:
        if not self.quant:
            return self.tensor(shape, "float32", name="input", signature=signature)
        return self.tensor(shape, "int8", scale=scale, zp=zp, name="input", signature=signature)

    def qp(self, t):
        d = self.tensors[t]
        return float(d["scale"][0]), int(d["zp"][0])

    def act_out(self, shape, scale, zp=None) -> int:
        if not self.quant:
            return self.tensor(shape, "float32")
        if zp is None:
            zp = int(self.rng.integers(-20, 20))
        return self.tensor(shape, "int8", scale=scale, zp=zp)

    def op(self, name: str, inputs, outputs, opts=None):
        import tflite

        code = getattr(tflite.BuiltinOperator, name)
        if code not in self.codes:
            self.codes.append(code)
        self.ops.append((self.codes.index(code), list(inputs), list(outputs), opts))
        return outputs[0]

    # -- layers --------------------------------------------------------------------------------
    def _weights(self, shape, qdim, k_fan):
        co = shape[qdim]
        if not self.quant:
            w = (self.rng.standard_normal(shape) / math.sqrt(k_fan)).astype(np.float32)
            return self.tensor(shape, "float32", data=w), None
        wq = self.rng.integers(-127, 128, size=shape).astype(np.int8)
        sw = self.rng.uniform(0.002, 0.01, size=co).astype(np.float32)
        return self.tensor(shape, "int8", data=wq, scale=sw, zp=np.zeros(co, np.int64), qdim=qdim), sw

    def _bias(self, co, s_in, sw, k_fan):
        if not self.quant:
            return self.tensor([co], "float32", data=(self.rng.standard_normal(co) * 0.1).astype(np.float32))
        b = self.rng.integers(-1, 2, size=co) * self.rng.integers(0, int(30 * 73 * math.sqrt(k_fan)), size=co)
        return self.tensor([co], "int32", data=b.astype(np.int32), scale=(s_in * sw).astype(np.float32),
                           zp=np.zeros(co, np.int64))

    def _out_scale(self, x, sw, k_fan):
        s_in, _ = self.qp(x) if self.quant else (1.0, 0)
        return float(s_in * float(np.mean(sw)) * math.sqrt(k_fan) * 73 * 40 / 40.0) if self.quant else None

    def conv(self, x, co, k, stride=1, padding="SAME", act=None, depthwise=False, multiplier=1):
        n, h, w, c = self.tensors[x]["shape"]
        kh, kw = k
        if depthwise:
            co = c * multiplier
            wt, sw = self._weights([1, kh, kw, co], 3, kh * kw)
            fan = kh * kw
        else:
            wt, sw = self._weights([co, kh, kw, c], 0, kh * kw * c)
            fan = kh * kw * c
        if padding == "SAME":
            oh, ow = -(-h // stride), -(-w // stride)
        else:
            oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
        s_in = self.qp(x)[0] if self.quant else 1.0
        b = self._bias(co, s_in, sw, fan)
        y = self.act_out([n, oh, ow, co], self._out_scale(x, sw, fan))
        if depthwise:
            opts = ("DepthwiseConv2DOptions", {"Padding": PAD[padding], "StrideW": stride, "StrideH": stride,
                                               "DepthMultiplier": multiplier, "FusedActivationFunction": ACT[act],
                                               "DilationWFactor": 1, "DilationHFactor": 1})
            return self.op("DEPTHWISE_CONV_2D", [x, wt, b], [y], opts)
        opts = ("Conv2DOptions", {"Padding": PAD[padding], "StrideW": stride, "StrideH": stride,
                                  "FusedActivationFunction": ACT[act], "DilationWFactor": 1, "DilationHFactor": 1})
        return self.op("CONV_2D", [x, wt, b], [y], opts)

    def dense(self, x, out, act=None, per_channel=False):
        n_in = int(np.prod(self.tensors[x]["shape"][1:]))
        wt, sw = self._weights([out, n_in], 0, n_in)
        if self.quant and not per_channel:  # one scale for the whole matrix
            sw = np.full(out, float(sw[0]), np.float32)
            self.tensors[wt]["scale"] = sw[:1]
            self.tensors[wt]["zp"] = np.zeros(1, np.int64)
        s_in = self.qp(x)[0] if self.quant else 1.0
        b = self._bias(out, s_in, sw, n_in)
        y = self.act_out([1, out], self._out_scale(x, sw, n_in))
        return self.op("FULLY_CONNECTED", [x, wt, b], [y],
                       ("FullyConnectedOptions", {"FusedActivationFunction": ACT[act]}))

    def add(self, a, b, act=None):
        shape = self.tensors[a]["shape"]
        scale = max(self.qp(a)[0], self.qp(b)[0]) * 1.3 if self.quant else None
        y = self.act_out(shape, scale)
        return self.op("ADD", [a, b], [y], ("AddOptions", {"FusedActivationFunction": ACT[act]}))

    def pool(self, x, kind, k, stride, padding="VALID", act=None):
        n, h, w, c = self.tensors[x]["shape"]
        if padding == "SAME":
            oh, ow = -(-h // stride), -(-w // stride)
        else:
            oh, ow = (h - k[0]) // stride + 1, (w - k[1]) // stride + 1
        if self.quant:
            s, zp = self.qp(x)
            y = self.tensor([n, oh, ow, c], "int8", scale=s, zp=zp)
        else:
            y = self.tensor([n, oh, ow, c], "float32")
        return self.op(kind, [x], [y], ("Pool2DOptions", {"Padding": PAD[padding], "StrideW": stride,
                                                          "StrideH": stride, "FilterWidth": k[1],
                                                          "FilterHeight": k[0], "FusedActivationFunction": ACT[act]}))

    def pad(self, x, p):
        n, h, w, c = self.tensors[x]["shape"]
        pads = self.tensor([4, 2], "int32", data=np.array([[0, 0], [p, p], [p, p], [0, 0]], np.int32))
        if self.quant:
            s, zp = self.qp(x)
            y = self.tensor([n, h + 2 * p, w + 2 * p, c], "int8", scale=s, zp=zp)
        else:
            y = self.tensor([n, h + 2 * p, w + 2 * p, c], "float32")
        return self.op("PAD", [x, pads], [y])

    def reshape(self, x, shape):
        s = self.tensor([len(shape)], "int32", data=np.array(shape, np.int32))
        d = self.tensors[x]
        y = self.tensor(shape, d["dtype"], scale=d["scale"], zp=d["zp"])
        return self.op("RESHAPE", [x, s], [y], ("ReshapeOptions", {}))

    def softmax(self, x):
        shape = self.tensors[x]["shape"]
        y = self.tensor(shape, "int8", scale=1 / 256, zp=-128) if self.quant else self.tensor(shape, "float32")
        return self.op("SOFTMAX", [x], [y], ("SoftmaxOptions", {"Beta": 1.0}))

    def mean(self, x, keep_dims=False, rescale=1.0):
        n, h, w, c = self.tensors[x]["shape"]
        axes = self.tensor([2], "int32", data=np.array([1, 2], np.int32))
        shape = [n, 1, 1, c] if keep_dims else [n, c]
        if self.quant:
            s, zp = self.qp(x)
            y = self.tensor(shape, "int8", scale=s * rescale, zp=zp if rescale == 1.0 else zp + 7)
        else:
            y = self.tensor(shape, "float32")
        return self.op("MEAN", [x, axes], [y], ("ReducerOptions", {"KeepDims": keep_dims}))

    def unary(self, x, name):
        d = self.tensors[x]
        y = self.tensor(d["shape"], d["dtype"], scale=d["scale"], zp=d["zp"])
        return self.op(name, [x], [y])

    # -- serialisation -------------------------------------------------------------------------
    def save(self, path, inputs, outputs) -> None:
        import flatbuffers
        import tflite

        types = {"float32": 0, "int32": 2, "int8": 9, "int16": 7}
        b = flatbuffers.Builder(1024)

        def ivec(start, values, dtype=np.int32):
            return b.CreateNumpyVector(np.asarray(values, dtype=dtype))

        bufs = []
        for raw in self.buffers:
            data = b.CreateNumpyVector(np.frombuffer(raw, np.uint8)) if raw else None
            tflite.BufferStart(b)
            if data is not None:
                tflite.BufferAddData(b, data)
            bufs.append(tflite.BufferEnd(b))
        tens = []
        for t in self.tensors:
            name = b.CreateString(t["name"])
            shape = ivec(None, t["shape"])
            sig = ivec(None, t["signature"]) if t["signature"] is not None else None
            q = None
            if t["scale"] is not None:
                sc = b.CreateNumpyVector(t["scale"].astype(np.float32))
                zp = b.CreateNumpyVector(t["zp"].astype(np.int64))
                tflite.QuantizationParametersStart(b)
                tflite.QuantizationParametersAddScale(b, sc)
                tflite.QuantizationParametersAddZeroPoint(b, zp)
                tflite.QuantizationParametersAddQuantizedDimension(b, t["qdim"])
                q = tflite.QuantizationParametersEnd(b)
            tflite.TensorStart(b)
            tflite.TensorAddShape(b, shape)
            if sig is not None:
                tflite.TensorAddShapeSignature(b, sig)
            tflite.TensorAddType(b, types[t["dtype"]])
            tflite.TensorAddBuffer(b, t["buffer"])
            tflite.TensorAddName(b, name)
            if q is not None:
                tflite.TensorAddQuantization(b, q)
            tens.append(tflite.TensorEnd(b))
        ops = []
        for code, ins, outs, opts in self.ops:
            iv, ov = ivec(None, ins), ivec(None, outs)
            o = None
            if opts is not None:
                cls, fields = opts
                getattr(tflite, f"{cls}Start")(b)
                for k, v in fields.items():
                    getattr(tflite, f"{cls}Add{k}")(b, v)
                o = getattr(tflite, f"{cls}End")(b)
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, code)
            tflite.OperatorAddInputs(b, iv)
            tflite.OperatorAddOutputs(b, ov)
            if o is not None:
                tflite.OperatorAddBuiltinOptionsType(b, getattr(tflite.BuiltinOptions, opts[0]))
                tflite.OperatorAddBuiltinOptions(b, o)
            ops.append(tflite.OperatorEnd(b))
        codes = []
        for c in self.codes:
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(c, 127))
            tflite.OperatorCodeAddBuiltinCode(b, c)
            tflite.OperatorCodeAddVersion(b, 1)
            codes.append(tflite.OperatorCodeEnd(b))

        def table_vec(items):
            b.StartVector(4, len(items), 4)
            for it in reversed(items):
                b.PrependUOffsetTRelative(it)
            return b.EndVector()

        tv, ov_, cv, bv = table_vec(tens), table_vec(ops), table_vec(codes), table_vec(bufs)
        gi, go = ivec(None, inputs), ivec(None, outputs)
        gname = b.CreateString("main")
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tv)
        tflite.SubGraphAddInputs(b, gi)
        tflite.SubGraphAddOutputs(b, go)
        tflite.SubGraphAddOperators(b, ov_)
        tflite.SubGraphAddName(b, gname)
        sg = tflite.SubGraphEnd(b)
        sgv = table_vec([sg])
        desc = b.CreateString("edgebuild test fixture")
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, cv)
        tflite.ModelAddSubgraphs(b, sgv)
        tflite.ModelAddDescription(b, desc)
        tflite.ModelAddBuffers(b, bv)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        with open(path, "wb") as f:
            f.write(b.Output())


def small_net(path, quant: bool = True, seed: int = 0):
    """A small network with every builtin edgebuild reads: PAD folded into a depthwise conv, a
    residual ADD, both pools, a flatten of a 2x2x8 tensor (column permutation), dense layers with
    per-tensor and per-channel scales, a final SOFTMAX. Input 8x8x2 (NHWC), 5 classes."""
    w = Writer(seed, quant)
    x = w.input([1, 8, 8, 2])
    a = w.conv(x, 4, (3, 3), act="RELU")                                   # 8x8x4
    p = w.pad(a, 1)                                                          # 10x10x4
    d = w.conv(p, 0, (3, 3), stride=2, padding="VALID", act="RELU6", depthwise=True, multiplier=2)  # 4x4x8
    e = w.conv(d, 8, (1, 1))
    s = w.add(d, e, act="RELU")
    m = w.pool(s, "MAX_POOL_2D", (2, 2), 1)                                 # 3x3x8
    v = w.pool(m, "AVERAGE_POOL_2D", (2, 2), 2, padding="SAME")             # 2x2x8
    f = w.reshape(v, [1, 32])
    h = w.dense(f, 16, act="RELU")
    o = w.dense(h, 5, per_channel=True)
    y = w.softmax(o)
    w.save(path, inputs=[x], outputs=[y])
    return o  # the logits tensor (SOFTMAX input)
