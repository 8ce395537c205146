"""Your own backbone: register a local SavedModel by name and train on it.

Any TF2 SavedModel in TF-Hub format (images ``[batch, h, w, 3]`` in, one tensor
``[batch, d]`` out) can be a backbone. This script

1. exports a real one to a folder of yours: a copy of the embedded
   EfficientNet-Lite0 feature extractor (stand-in for a model you trained or
   downloaded: a folder with ``saved_model.pb`` and ``variables/``),
2. lets hubtransfer inspect it (``spec_from_handle``: input size from the
   signature, output width by running it once), then describes it with a
   ``BackboneSpec`` (name, handle, input size, value range, output kind and
   width, licence, tags) and registers it with ``register_backbone``,
3. trains a ``TransferClassifier`` on the Fashion-MNIST sample with it, by name,
   and saves it: the model folder carries a copy of the backbone, so it loads
   even where the original folder does not exist.

A spec written by hand (as in a plugin) should be checked against its model:
``hubtransfer.testing.check_backbone_spec(spec)`` loads it and compares the output
width; here the values come from the inspection, so they match by construction. For
tests, ``hubtransfer.testing.make_tiny_savedmodel`` writes a small real SavedModel in
a second (random weights, so poor features).

Run (offline, 20-30 s on two CPU cores; about 85% accuracy):
    python examples/custom_backbone.py [--keep FOLDER]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import hubtransfer

DATA = Path(__file__).resolve().parent / "data"


def export_savedmodel(folder: Path) -> None:
    """Writes the stand-in SavedModel to ``folder``: a copy of the embedded backbone's."""
    embedded = hubtransfer.get_backbone_spec("efficientnet_lite0_embedded_fv")
    shutil.copytree(hubtransfer.resolve_handle(embedded.handle), folder)


def register_local_backbone(folder: Path) -> hubtransfer.BackboneSpec:
    """Describes the SavedModel in ``folder`` and registers it as ``my_local_fv``."""
    inspected = hubtransfer.spec_from_handle(str(folder), output_kind="feature_vector")
    print(
        f"Inspected {folder}: input {inspected.input_size[0]}x{inspected.input_size[1]}, "
        f"{inspected.output_kind} of width {inspected.output_dim}"
    )
    # The spec is the contract: how to feed the model (size, value range) and what comes out.
    spec = hubtransfer.BackboneSpec(
        name="my_local_fv",
        handle=str(folder),
        input_size=inspected.input_size,
        value_range=(0.0, 1.0),
        output_kind="feature_vector",
        feature_dim=inspected.output_dim,
        licence="Apache-2.0",
        description="My own feature extractor, from a local SavedModel folder",
        tags=frozenset({"local"}),
    )
    hubtransfer.register_backbone(spec, replace=True)
    return spec


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="write the SavedModel here and keep it")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch) / "my_local_fv"
        if not (folder / "saved_model.pb").is_file():  # --keep FOLDER from an earlier run
            export_savedmodel(folder)
        spec = register_local_backbone(folder)
        print("Registered:", [s.name for s in hubtransfer.list_backbones(tag="local")])

        # Features are cached by the weights' content hash, not by name or folder: a copy
        # of the embedded model reuses the embedded model's cached features.
        model = hubtransfer.TransferClassifier(spec.name, epochs=30, verbose=0)
        model.fit(DATA / "fashion-mnist-sample")
        report = model.evaluate(DATA / "fashion-mnist-sample-test")
        print(
            f"{spec.name} + a Dense head on Fashion-MNIST: accuracy {report.accuracy:.0%} "
            f"on {report.n_samples} test images (chance 10%)"
        )
        saved = model.save(Path(scratch) / "model")
        reloaded = hubtransfer.TransferClassifier.load(saved)
        print(f"Saved and reloaded; the model folder carries the backbone: {reloaded!r}")


if __name__ == "__main__":
    main()
