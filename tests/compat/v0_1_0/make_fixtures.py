"""Wrote the compatibility fixtures beside it, with hubtransfer 0.1.0 at commit 293ee9c.

Kept as the record of how they were made; run with a later version it would
write that version's fixtures instead (in a folder of their own)::

    HUBTRANSFER_CACHE_DIR=$(mktemp -d) python make_fixtures.py OUT WORK
"""

import json
import pickle
import shutil
import sys
from pathlib import Path

import hubtransfer
from hubtransfer.testing import make_colour_folder, make_tiny_savedmodel, tiny_spec


def main() -> None:
    out = Path(sys.argv[1])
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    work = Path(sys.argv[2])
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    backbone_dir = make_tiny_savedmodel(work / "tiny-fv", output_dim=8, seed=3)
    spec = tiny_spec(backbone_dir, name="compat_tiny_fv")
    data = make_colour_folder(work / "train", per_class=8, seed=1)
    make_colour_folder(out / "images", per_class=2, seed=2)
    model = hubtransfer.TransferClassifier(spec, epochs=30, learning_rate=0.05, verbose=0, seed=0)
    model.fit(data)
    model.save(out / "model")
    files = sorted(p.relative_to(out).as_posix() for p in (out / "images").rglob("*.png"))
    proba = model.predict_proba([out / f for f in files])
    labels = model.predict([out / f for f in files])
    features = hubtransfer.extract_features(
        model.backbone_, model.preprocessor_, [out / f for f in files], runtime="tensorflow"
    )
    store = hubtransfer.FeatureStore.for_backbone(model.backbone_, spec.preprocessing)
    shutil.copytree(store.directory, out / "feature-store" / store.directory.name)
    digests = [hubtransfer.file_digest(out / f) for f in files]
    with open(out / "preprocessor.pkl", "wb") as f:
        pickle.dump(model.preprocessor_, f)
    with open(out / "labelmap.pkl", "wb") as f:
        pickle.dump(model.label_map_, f)
    expected = {
        "made_by": f"hubtransfer {hubtransfer.__version__} at commit 293ee9c",
        "classes": [str(c) for c in model.classes_],
        "files": files,
        "digests": digests,
        "labels": [str(v) for v in labels],
        "probabilities": proba.astype(float).tolist(),
        "features": features.astype(float).tolist(),
        "temperature": model.temperature_,
        "store": store.directory.name,
    }
    (out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(store.directory, len(store))


if __name__ == "__main__":
    main()
