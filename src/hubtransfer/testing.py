"""Helpers for testing hubtransfer and backbone plugins without the internet.

Plugin authors can build tiny TF-Hub-format SavedModels, pack them as
``.tar.gz`` archives, serve them from a loopback HTTP server, and check that a
spec matches the model it names::

    from hubtransfer.testing import check_backbone_spec
    for spec in my_package.backbones.specs():
        check_backbone_spec(spec)
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final, Literal

import numpy as np

from ._spec import BackboneSpec

__all__ = [
    "check_backbone_spec",
    "free_loopback_ports",
    "make_colour_folder",
    "make_tar_gz",
    "make_tiny_savedmodel",
    "serve_directory",
    "tiny_spec",
]

COLOURS: Final = {"blue": (20, 20, 230), "green": (20, 220, 20), "red": (230, 20, 20)}
"""The classes of :func:`make_colour_folder` and their mean RGB colours."""


def make_tiny_savedmodel(
    path: str | os.PathLike[str],
    *,
    output: Literal["feature_vector", "classification"] = "feature_vector",
    input_size: tuple[int, int] = (32, 32),
    output_dim: int = 8,
    seed: int = 0,
) -> Path:
    """Writes a small, real TF-Hub-format (TF2) SavedModel.

    The model takes float32 images ``[batch, h, w, 3]`` in ``[0, 1]`` and
    returns ``[batch, output_dim]`` features or logits. It is a real
    convolutional network (conv, batch norm, pooling, dense) with seeded
    weights, loadable with ``tensorflow_hub.KerasLayer``, trainable or not.

    Args:
        path: Folder to write (created; must not hold a SavedModel already).
        output: ``"feature_vector"`` (ReLU features) or ``"classification"``
            (raw logits).
        input_size: ``(height, width)`` of the signature.
        output_dim: Width of the output.
        seed: Seed for the weights.

    Returns:
        The folder.

    Example:
        >>> import tempfile, tensorflow_hub as hub
        >>> from hubtransfer.testing import make_tiny_savedmodel
        >>> folder = make_tiny_savedmodel(tempfile.mkdtemp() + "/fv", output_dim=4)
        >>> hub.KerasLayer(str(folder))(np.zeros((2, 32, 32, 3), np.float32)).shape
        TensorShape([2, 4])
    """
    import tensorflow as tf
    import tf_keras

    folder = Path(path)
    tf_keras.utils.set_random_seed(seed)
    height, width = input_size
    inputs = tf_keras.Input((height, width, 3), dtype=tf.float32)
    x = tf_keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = tf_keras.layers.BatchNormalization(epsilon=1e-3)(x)
    x = tf_keras.layers.ReLU()(x)
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    activation = "relu" if output == "feature_vector" else None
    outputs = tf_keras.layers.Dense(output_dim, activation=activation)(x)
    model = tf_keras.Model(inputs, outputs)
    # Give the batch-norm statistics non-trivial values so training and
    # inference modes differ, as in a real backbone.
    batch_norm = model.layers[2]
    rng = np.random.default_rng(seed)
    batch_norm.moving_mean.assign(rng.normal(0.0, 0.1, 8).astype(np.float32))
    batch_norm.moving_variance.assign(rng.uniform(0.5, 1.5, 8).astype(np.float32))
    folder.parent.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(model, str(folder))
    return folder


def tiny_spec(
    path: str | os.PathLike[str] | None = None,
    *,
    name: str = "tiny_fv",
    handle: str | None = None,
    output: Literal["feature_vector", "classification"] = "feature_vector",
    input_size: tuple[int, int] = (32, 32),
    output_dim: int = 8,
    label_offset: int = 0,
    label_set: str | None = None,
) -> BackboneSpec:
    """A :class:`BackboneSpec` matching :func:`make_tiny_savedmodel`'s model.

    Args:
        path: The model folder (used as the handle unless ``handle`` is given).
        name: Registry name.
        handle: Handle to record instead of ``path``.
        output: Output kind, as given to :func:`make_tiny_savedmodel`.
        input_size: As given to :func:`make_tiny_savedmodel`.
        output_dim: As given to :func:`make_tiny_savedmodel`.
        label_offset: Label offset for a classifier.
        label_set: Label set for a classifier (``"imagenet"`` for 1000/1001).
    """
    chosen = handle if handle is not None else str(path)
    if output == "classification":
        return BackboneSpec(
            name=name,
            handle=chosen,
            input_size=input_size,
            output_kind="classification",
            num_classes=output_dim,
            label_offset=label_offset,
            label_set=label_set,
            licence="Apache-2.0",
            description="Tiny test classifier",
            tags=frozenset({"tiny", "test"}),
            source="hubtransfer.testing",
        )
    return BackboneSpec(
        name=name,
        handle=chosen,
        input_size=input_size,
        output_kind="feature_vector",
        feature_dim=output_dim,
        licence="Apache-2.0",
        description="Tiny test feature vector",
        tags=frozenset({"tiny", "test"}),
        source="hubtransfer.testing",
    )


def make_tar_gz(
    source: str | os.PathLike[str],
    archive: str | os.PathLike[str],
    *,
    top_level: str | None = None,
) -> Path:
    """Packs a SavedModel folder as ``.tar.gz``, as TF-Hub serves models.

    Args:
        source: The SavedModel folder.
        archive: The archive file to write.
        top_level: If given, members sit under this folder name
            (``top_level/saved_model.pb``) instead of at the root.
    """
    source_path = Path(source)
    archive_path = Path(archive)
    archive_path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive_path, "w:gz") as tar:
        for item in sorted(source_path.rglob("*")):
            relative = item.relative_to(source_path).as_posix()
            name = f"{top_level}/{relative}" if top_level else relative
            tar.add(item, arcname=name, recursive=False)
    return archive_path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve_directory(path: str | os.PathLike[str]) -> Iterator[str]:
    """Serves a folder over HTTP on 127.0.0.1 for the duration of a block.

    Yields:
        The base URL, e.g. ``http://127.0.0.1:43125``.

    Example:
        >>> import tempfile, urllib.request
        >>> from hubtransfer.testing import serve_directory
        >>> folder = tempfile.mkdtemp()
        >>> _ = open(folder + "/hello.txt", "w").write("hi")
        >>> with serve_directory(folder) as url:
        ...     urllib.request.urlopen(url + "/hello.txt").read()
        b'hi'
    """
    handler = functools.partial(_QuietHandler, directory=str(path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def check_backbone_spec(spec: BackboneSpec) -> None:
    """Loads the model a spec names and checks the spec describes it.

    Runs the model once on a batch of two images of the spec's input size
    and compares the output width with ``feature_dim`` / ``num_classes``.

    Raises:
        AssertionError: If the model's output does not match the spec.
        HubTransferError: If the handle cannot be resolved or loaded.
    """
    from ._backbone import load_backbone

    backbone = load_backbone(spec)
    height, width = spec.input_size
    output = backbone.predict(np.zeros((2, height, width, 3), np.float32))
    if output.shape != (2, spec.output_dim):
        raise AssertionError(
            f"Backbone {spec.name!r} returned shape {output.shape} for 2 images of size "
            f"{spec.input_size}; its spec says (2, {spec.output_dim})."
        )
    if not np.all(np.isfinite(output)):
        raise AssertionError(f"Backbone {spec.name!r} returned non-finite values.")


def make_colour_folder(
    root: str | os.PathLike[str], *, per_class: int = 10, noise: int = 20, seed: int = 0
) -> Path:
    """Writes a small class-folder data set that a tiny backbone can learn.

    One sub-folder per colour of :data:`COLOURS` (``blue``, ``green``,
    ``red``), each with ``per_class`` 32x32 PNGs of that colour plus uniform
    noise of +-``noise`` per channel.

    Args:
        root: The folder to create (with its parents).
        per_class: Images per class.
        noise: Half-width of the per-pixel noise.
        seed: Seed of the noise.

    Returns:
        ``root``, as a :class:`~pathlib.Path`.

    Example:
        >>> import tempfile, hubtransfer
        >>> from hubtransfer.testing import make_colour_folder
        >>> data = make_colour_folder(tempfile.mkdtemp() + "/data", per_class=2)
        >>> len(hubtransfer.scan_image_folder(data))
        6
    """
    from PIL import Image

    folder = Path(root)
    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            jitter = rng.integers(-noise, noise, (32, 32, 3)) if noise else 0
            pixels = np.clip(np.array(colour) + jitter, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{index}.png")
    return folder


def free_loopback_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now (e.g. for a local ``TF_CONFIG``).

    Example:
        >>> from hubtransfer.testing import free_loopback_ports
        >>> first, second = free_loopback_ports(2)
        >>> first != second
        True
    """
    import socket

    sockets = [socket.socket() for _ in range(count)]
    try:
        for item in sockets:
            item.bind(("127.0.0.1", 0))
        return [int(item.getsockname()[1]) for item in sockets]
    finally:
        for item in sockets:
            item.close()
