"""The four MLPerf Tiny reference networks in Keras, converted by TensorFlow's TFLiteConverter to
fully-int8 .tflite files (full-integer quantisation from a representative dataset, int8 input and
output) and to float .tflite files. Needs the `[tflite]` extra (tensorflow-cpu); untrained,
seeded weights with randomised BatchNorm statistics (folded by the converter).

Architectures as in the MLPerf Tiny training scripts (github.com/mlcommons/tiny, benchmark/training):
- ds_cnn: 49x10x1, conv 10x4 s2 (64), 4 x (depthwise 3x3 + pointwise 64), avg pool 25x5, dense 12;
- resnet8: 32x32x3, conv 16, three residual stacks 16/32/64 (1x1 projection shortcuts), avg pool 8, dense 10;
- mobilenet_v1: 96x96x3, width 0.25, 13 depthwise-separable blocks, avg pool 3, dense 2;
- fc_autoencoder: 640-128x4-8-128x4-640 dense with BatchNorm and ReLU.
"""

from __future__ import annotations

import numpy as np

SHAPES = {"ds_cnn": (49, 10, 1), "resnet8": (32, 32, 3), "mobilenet_v1": (96, 96, 3), "fc_autoencoder": (640,)}


def _bn(L, x):
    return L.BatchNormalization(beta_initializer="random_normal", gamma_initializer=_gamma(),
                                moving_mean_initializer="random_normal",
                                moving_variance_initializer=_var())(x)


def _gamma():
    import tensorflow as tf
    return tf.keras.initializers.RandomUniform(0.5, 1.5)


def _var():
    import tensorflow as tf
    return tf.keras.initializers.RandomUniform(0.5, 2.0)


def ds_cnn(tf):
    L = tf.keras.layers
    inp = tf.keras.Input(SHAPES["ds_cnn"], batch_size=1)
    x = L.Conv2D(64, (10, 4), strides=(2, 2), padding="same")(inp)
    x = L.ReLU()(_bn(L, x))
    for _ in range(4):
        x = L.DepthwiseConv2D((3, 3), padding="same")(x)
        x = L.ReLU()(_bn(L, x))
        x = L.Conv2D(64, (1, 1), padding="same")(x)
        x = L.ReLU()(_bn(L, x))
    x = L.AveragePooling2D(pool_size=(25, 5))(x)
    x = L.Flatten()(x)
    return tf.keras.Model(inp, L.Dense(12, activation="softmax")(x))


def resnet8(tf):
    L = tf.keras.layers
    inp = tf.keras.Input(SHAPES["resnet8"], batch_size=1)
    x = L.ReLU()(_bn(L, L.Conv2D(16, 3, padding="same")(inp)))
    for filters, stride in ((16, 1), (32, 2), (64, 2)):
        y = L.ReLU()(_bn(L, L.Conv2D(filters, 3, strides=stride, padding="same")(x)))
        y = _bn(L, L.Conv2D(filters, 3, padding="same")(y))
        if stride != 1:
            x = L.Conv2D(filters, 1, strides=stride, padding="same")(x)
        x = L.ReLU()(L.Add()([x, y]))
    x = L.Flatten()(L.AveragePooling2D(pool_size=8)(x))
    return tf.keras.Model(inp, L.Dense(10, activation="softmax")(x))


def mobilenet_v1(tf):
    L = tf.keras.layers
    inp = tf.keras.Input(SHAPES["mobilenet_v1"], batch_size=1)
    x = L.ReLU()(_bn(L, L.Conv2D(8, 3, strides=2, padding="same")(inp)))
    for filters, stride in ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1), (128, 1),
                            (128, 1), (128, 1), (256, 2), (256, 1)):
        x = L.ReLU()(_bn(L, L.DepthwiseConv2D(3, strides=stride, padding="same")(x)))
        x = L.ReLU()(_bn(L, L.Conv2D(filters, 1, padding="same")(x)))
    x = L.Flatten()(L.AveragePooling2D(pool_size=3)(x))
    return tf.keras.Model(inp, L.Dense(2, activation="softmax")(x))


def fc_autoencoder(tf):
    L = tf.keras.layers
    inp = tf.keras.Input(SHAPES["fc_autoencoder"], batch_size=1)
    x = inp
    for units in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        x = L.ReLU()(_bn(L, L.Dense(units)(x)))
    return tf.keras.Model(inp, L.Dense(640)(x))


NETS = {"ds_cnn": ds_cnn, "resnet8": resnet8, "mobilenet_v1": mobilenet_v1, "fc_autoencoder": fc_autoencoder}


def convert(name: str, out_dir, seed: int = 0, samples: int = 64):
    """Write <name>_int8.tflite and <name>_float.tflite to ``out_dir``; returns their paths."""
    import tensorflow as tf

    from edgebuild.tflite import keras_to_int8

    tf.keras.utils.set_random_seed(seed)
    model = NETS[name](tf)
    rng = np.random.default_rng(seed)
    calib = rng.standard_normal((samples, 1) + SHAPES[name]).astype(np.float32)

    paths = {}
    c = tf.lite.TFLiteConverter.from_keras_model(model)
    paths["float"] = out_dir / f"{name}_float.tflite"
    paths["float"].write_bytes(c.convert())
    paths["int8"] = keras_to_int8(model, calib[:, 0], out_dir / f"{name}_int8.tflite", samples=samples)
    return paths
