"""The backbones this package adds to hubtransfer.

hubtransfer calls :func:`specs` once, lazily, at the first registry lookup in a
process (``hubtransfer.list_backbones()``, ``TransferClassifier("name")``,
``hubtransfer backbones`` ...), never at import time. Keep it cheap: build specs,
do not download or load models here.
"""

from __future__ import annotations

from hubtransfer import BackboneSpec

TFHUB = "https://tfhub.dev/"
DOCS = "https://github.com/tensorflow/tfhub.dev/blob/master/assets/docs/google/models/"
TAGS = frozenset({"example-plugin", "inception", "imagenet", "tfhub"})


def specs() -> list[BackboneSpec]:
    """Inception-ResNet V2 (ImageNet-1k) as a feature extractor and as a classifier.

    The values are those of the models' tfhub.dev pages (linked in ``source``): RGB
    pixels in [0, 1], 299x299 by default (other sizes work), a 1536-d feature vector,
    1001 logits with ``background`` first.

    Returns:
        The specs to register; names must not clash with other backbones.
    """
    feature_vector = "google/imagenet/inception_resnet_v2/feature_vector/5"
    classification = "google/imagenet/inception_resnet_v2/classification/5"
    return [
        BackboneSpec(
            name="example_inception_resnet_v2_fv",
            handle=TFHUB + feature_vector,
            input_size=(299, 299),
            value_range=(0.0, 1.0),
            dynamic_size=True,
            output_kind="feature_vector",
            feature_dim=1536,
            licence="Apache-2.0",
            description="Inception-ResNet V2, 299x299, ImageNet-1k: 1536-d feature vector.",
            tags=TAGS | {"feature_vector"},
            source=f"{DOCS}{feature_vector}.md",
            companion="example_inception_resnet_v2_classifier",
        ),
        BackboneSpec(
            name="example_inception_resnet_v2_classifier",
            handle=TFHUB + classification,
            input_size=(299, 299),
            value_range=(0.0, 1.0),
            dynamic_size=True,
            output_kind="classification",
            num_classes=1001,
            label_offset=1,
            label_set="imagenet",
            licence="Apache-2.0",
            description="Inception-ResNet V2, 299x299, ImageNet-1k: 1001 logits "
            "(index 0 is background).",
            tags=TAGS | {"classification"},
            source=f"{DOCS}{classification}.md",
            companion="example_inception_resnet_v2_fv",
        ),
    ]
