"""The head trainer: a softmax head fitted on any features, on its own."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import hubtransfer
from hubtransfer import HeadTrainer, balanced_class_weights
from hubtransfer.testing import tiny_spec


def _separable(
    n: int = 90, dim: int = 6, classes: int = 3, seed: int = 0
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Gaussian blobs around well-separated centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 4.0, (classes, dim))
    labels = np.arange(n) % classes
    features = centres[labels] + rng.normal(0.0, 0.5, (n, dim))
    return features.astype(np.float32), labels.astype(np.int64)


@pytest.fixture(scope="module")
def fitted() -> HeadTrainer:
    features, labels = _separable(dim=5)
    return HeadTrainer(epochs=20, learning_rate=0.05, verbose=0).fit(features, labels)


def test_learns_a_separable_problem(fitted: HeadTrainer) -> None:
    assert fitted.n_classes_ == 3
    assert fitted.feature_dim_ == 5
    assert set(fitted.history_) == {"loss", "accuracy"}
    assert len(fitted.history_["loss"]) == 20
    assert fitted.history_["loss"][-1] < fitted.history_["loss"][0]
    # Fresh examples from the same blobs.
    features, labels = _separable(n=300, dim=5)
    accuracy = (fitted.predict_proba(features[90:]).argmax(axis=1) == labels[90:]).mean()
    assert accuracy > 0.95


def test_n_classes_adds_classes_without_examples() -> None:
    features, labels = _separable(classes=2)
    trainer = HeadTrainer(epochs=2, verbose=0)
    assert trainer.fit(features, labels, n_classes=4) is trainer
    assert trainer.predict_proba(features).shape == (len(features), 4)


_BAD_PARAMETERS = [
    ("epochs", -3, "a positive int"),
    ("epochs", 0, "a positive int"),
    ("epochs", 2.5, "a positive int"),
    ("epochs", True, "a positive int"),
    ("batch_size", 0, "a positive int"),
    ("learning_rate", 0.0, "a float in (0, 10)"),
    ("learning_rate", float("nan"), "a float in (0, 10)"),
    ("learning_rate", "fast", "a float in (0, 10)"),
    ("dropout", 1.0, "a float in [0, 1)"),
    ("dropout", -0.1, "a float in [0, 1)"),
    ("hidden_units", 0, "a positive int"),
    ("label_smoothing", 1.5, "a float in [0, 1)"),
    ("l2", -1.0, "a float in [0, inf)"),
    ("l2", float("inf"), "a float in [0, inf)"),
    ("class_weight", "auto", "'balanced', a mapping of class index to weight, or None"),
    ("class_weight", [1.0, 2.0], "'balanced', a mapping of class index to weight, or None"),
    ("early_stopping", "yes", "a bool"),
    ("patience", 0, "a positive int"),
    ("seed", -1, "an int >= 0"),
    ("seed", None, "an int >= 0"),
    ("verbose", -1, "an int >= 0"),
]


@pytest.mark.parametrize(("name", "value", "expected"), _BAD_PARAMETERS)
def test_parameters_are_validated_at_fit(name: str, value: object, expected: str) -> None:
    trainer = HeadTrainer(**{name: value})  # type: ignore[arg-type]
    message = f"The {name!r} parameter of HeadTrainer must be {expected}. Got {value!r} instead."
    features, labels = _separable(n=6)
    with pytest.raises(hubtransfer.InvalidParameterError, match=re.escape(message)):
        trainer.fit(features, labels)
    with pytest.raises(ValueError, match=re.escape(message)):
        trainer.validate()


def test_validate_names_its_owner() -> None:
    with pytest.raises(
        hubtransfer.InvalidParameterError,
        match=re.escape(
            "The 'epochs' parameter of TransferClassifier must be a positive int. Got -3 instead."
        ),
    ):
        HeadTrainer(epochs=-3).validate(owner="TransferClassifier")


def test_the_same_seed_gives_the_same_head() -> None:
    features, labels = _separable()

    def run(seed: int) -> npt.NDArray[np.float32]:
        trainer = HeadTrainer(
            epochs=2, batch_size=16, dropout=0.3, hidden_units=8, seed=seed, verbose=0
        )
        return trainer.fit(features, labels).predict_proba(features)

    first = run(3)
    np.testing.assert_array_equal(run(3), first)
    assert not np.array_equal(run(4), first)


def test_early_stopping_restores_the_best_weights() -> None:
    # Many features, few examples and random labels: the head memorises the
    # training set, and the validation loss soon rises.
    rng = np.random.default_rng(1)
    features = rng.normal(size=(40, 64)).astype(np.float32)
    labels = rng.integers(0, 2, 40)
    validation_features = rng.normal(size=(40, 64)).astype(np.float32)
    validation_labels = rng.integers(0, 2, 40)
    trainer = HeadTrainer(epochs=100, learning_rate=0.05, patience=1, verbose=0)
    trainer.fit(features, labels, validation_data=(validation_features, validation_labels))
    losses = trainer.history_["val_loss"]
    assert len(trainer.history_["loss"]) == len(losses) < 100
    best = int(np.argmin(losses))
    assert best < len(losses) - 1
    one_hot = np.eye(2, dtype=np.float32)[validation_labels]
    restored_loss = trainer.head_.evaluate(validation_features, one_hot, verbose=0)[0]
    assert restored_loss == pytest.approx(losses[best], abs=1e-5)
    assert restored_loss < losses[-1]


def test_without_early_stopping_all_epochs_run() -> None:
    rng = np.random.default_rng(1)
    features = rng.normal(size=(20, 16)).astype(np.float32)
    labels = np.arange(20) % 2
    trainer = HeadTrainer(epochs=6, learning_rate=0.05, patience=1, early_stopping=False, verbose=0)
    trainer.fit(features, labels, validation_data=(features[::-1], labels))
    assert len(trainer.history_["val_loss"]) == 6
    assert set(trainer.history_) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_balanced_class_weights_match_scikit_learn() -> None:
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.array([0, 0, 0, 0, 1, 2, 2])
    expected = compute_class_weight("balanced", classes=np.arange(3), y=labels)
    weights = balanced_class_weights(labels, 3)
    assert list(weights) == [0, 1, 2]
    np.testing.assert_allclose([weights[c] for c in range(3)], expected)
    assert balanced_class_weights([0, 0], 2) == {0: 0.5, 1: 0.0}


def _imbalanced() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    # Features that say nothing about the labels: the head can only learn priors.
    rng = np.random.default_rng(2)
    features = rng.normal(0.0, 0.1, (100, 4)).astype(np.float32)
    labels = (np.arange(100) % 10 == 0).astype(np.int64)
    return features, labels


def test_class_weight_balanced_raises_the_rare_class() -> None:
    features, labels = _imbalanced()

    def minority_probability(class_weight: Any) -> float:
        trainer = HeadTrainer(epochs=20, learning_rate=0.05, class_weight=class_weight, verbose=0)
        return float(trainer.fit(features, labels).predict_proba(features)[:, 1].mean())

    unweighted = minority_probability(None)
    assert unweighted < 0.25
    assert minority_probability("balanced") > unweighted + 0.2


def test_a_partial_class_weight_mapping_weighs_the_rest_one() -> None:
    features, labels = _imbalanced()
    # Class 0 counts for nothing, class 1 (left out) counts 1: the head only sees class 1.
    trainer = HeadTrainer(epochs=20, learning_rate=0.05, class_weight={0: 0.0}, verbose=0).fit(
        features, labels
    )
    assert trainer.predict_proba(features)[:, 1].mean() > 0.9


@pytest.mark.parametrize(
    ("class_weight", "message"),
    [
        ({0: 1.0, 5: 2.0}, "has the key 5, but there are 2 classes (indexes 0 to 1)"),
        ({-1: 1.0}, "has the key -1, but there are 2 classes"),
        ({"cat": 1.0}, "got the key 'cat'. Use int class indexes, not names."),
        ({0: -1.0}, "finite weights >= 0. Got -1.0 for class 0."),
        ({1: float("nan")}, "finite weights >= 0. Got nan for class 1."),
        ({1: "heavy"}, "finite weights >= 0. Got 'heavy' for class 1."),
    ],
    ids=["key-too-large", "negative-key", "name-key", "negative-weight", "nan-weight", "text"],
)
def test_class_weight_mappings_are_checked(class_weight: object, message: str) -> None:
    features, labels = _separable(n=10, classes=2)
    trainer = HeadTrainer(epochs=1, class_weight=class_weight, verbose=0)  # type: ignore[arg-type]
    with pytest.raises(hubtransfer.InvalidParameterError, match=re.escape(message)):
        trainer.fit(features, labels)


def test_hidden_units_and_dropout_build_the_layers() -> None:
    import tf_keras

    plain = HeadTrainer().build_head(8, 3)
    assert [type(layer) for layer in plain.layers] == [
        tf_keras.layers.InputLayer,
        tf_keras.layers.Dense,
    ]
    assert plain.output_shape == (None, 3)

    head = HeadTrainer(hidden_units=16, dropout=0.25, l2=0.01).build_head(8, 3)
    names = [layer.name for layer in head.layers]
    assert names == ["features", "hidden", "dropout", "probabilities"]
    hidden, dropout, output = head.layers[1:]
    assert hidden.units == 16
    assert hidden.activation is tf_keras.activations.relu
    assert hidden.kernel_regularizer is not None
    assert dropout.rate == 0.25
    assert output.units == 3
    assert output.activation is tf_keras.activations.softmax
    assert head.count_params() == 8 * 16 + 16 + 16 * 3 + 3

    no_dropout = HeadTrainer(hidden_units=4).build_head(2, 5)
    assert [layer.name for layer in no_dropout.layers] == ["features", "hidden", "probabilities"]


@settings(max_examples=12, deadline=None)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(0, 12), st.just(5)),
        elements=st.floats(-1e3, 1e3, width=32),
    )
)
def test_probabilities_are_distributions(fitted: HeadTrainer, features: np.ndarray) -> None:
    probabilities = fitted.predict_proba(features)
    assert probabilities.shape == (len(features), 3)
    assert probabilities.dtype == np.float32
    assert np.all(probabilities >= 0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_predict_proba_checks_the_feature_width(fitted: HeadTrainer) -> None:
    with pytest.raises(
        hubtransfer.InvalidParameterError,
        match=re.escape("HeadTrainer.predict_proba needs features shaped [n, 5]; got (2, 4)."),
    ):
        fitted.predict_proba(np.zeros((2, 4)))


def test_combine_matches_features_then_head(tiny_models: dict[str, Path]) -> None:
    import tf_keras

    backbone = hubtransfer.load_backbone(tiny_spec(tiny_models["fv"]))
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0.0, 1.0, (12, 32, 32, 3)).astype(np.float32)
    features = backbone.predict(pixels)
    labels = np.arange(12) % 3
    trainer = HeadTrainer(epochs=3, hidden_units=4, learning_rate=0.05, verbose=0)
    trainer.fit(features, labels)
    combined = trainer.combine(backbone)
    assert isinstance(combined, tf_keras.Model)
    assert combined.input_shape == (None, 32, 32, 3)
    np.testing.assert_allclose(
        combined.predict(pixels, verbose=0), trainer.predict_proba(features), atol=1e-5
    )


def test_combine_checks_the_feature_width(
    fitted: HeadTrainer, tiny_models: dict[str, Path]
) -> None:
    backbone = hubtransfer.load_backbone(tiny_spec(tiny_models["fv"]))
    with pytest.raises(
        hubtransfer.InvalidParameterError,
        match=re.escape("The backbone 'tiny_fv' outputs 8 features; the head was trained on 5."),
    ):
        fitted.combine(backbone)


def test_not_fitted(tiny_models: dict[str, Path]) -> None:
    trainer = HeadTrainer()
    message = "This HeadTrainer is not fitted yet. Call fit(features, labels) first."
    with pytest.raises(hubtransfer.NotFittedError, match=re.escape(message)):
        trainer.predict_proba(np.zeros((1, 3)))
    with pytest.raises(AttributeError, match=re.escape(message)):
        trainer.combine(hubtransfer.load_backbone(tiny_spec(tiny_models["fv"])))


_FEATURES = np.zeros((4, 3), np.float32)
_LABELS = np.array([0, 1, 0, 1])


@pytest.mark.parametrize(
    ("features", "labels", "message"),
    [
        (np.zeros(4), _LABELS, "The features must be a non-empty [n, d] array; got shape (4,)."),
        (np.zeros((0, 3)), [], "The features must be a non-empty [n, d] array; got shape (0, 3)."),
        (_FEATURES, [0, 1, 0], "must be a [n] array matching 4 features; got shape (3,)."),
        (_FEATURES, _LABELS[:, None], "must be a [n] array matching 4 features; got shape (4, 1)"),
        (_FEATURES, [0.0, 1.0, 0.0, 1.0], "non-negative integer class indexes; got float64."),
        (_FEATURES, [0, -1, 0, 1], "non-negative integer class indexes; got int64."),
        (_FEATURES, ["a", "b", "a", "b"], "non-negative integer class indexes; got <U1."),
        (np.full((4, 3), np.nan), _LABELS, "The features hold NaN or infinite values."),
        (_FEATURES, [0, 0, 0, 0], "A head needs at least 2 classes; every label is 0."),
    ],
    ids=[
        "features-rank",
        "no-features",
        "labels-length",
        "labels-rank",
        "float-labels",
        "negative-label",
        "name-labels",
        "nan",
        "one-class",
    ],
)
def test_bad_training_data(features: object, labels: object, message: str) -> None:
    with pytest.raises(hubtransfer.DatasetError, match=re.escape(message)):
        HeadTrainer(epochs=1, verbose=0).fit(features, labels)  # type: ignore[arg-type]


def test_bad_n_classes_and_validation_data() -> None:
    trainer = HeadTrainer(epochs=1, verbose=0)
    with pytest.raises(
        hubtransfer.InvalidParameterError,
        match=re.escape(
            "The 'n_classes' parameter of HeadTrainer must be an int >= 2. Got 1 instead."
        ),
    ):
        trainer.fit(_FEATURES, _LABELS, n_classes=1)
    with pytest.raises(
        hubtransfer.DatasetError, match=re.escape("A label is 2, but n_classes is 2.")
    ):
        trainer.fit(_FEATURES, [0, 1, 2, 1], n_classes=2)
    with pytest.raises(
        hubtransfer.DatasetError,
        match=re.escape("Validation features have 2 columns, training features 3."),
    ):
        trainer.fit(_FEATURES, _LABELS, validation_data=(np.zeros((2, 2)), [0, 1]))
    with pytest.raises(
        hubtransfer.DatasetError,
        match=re.escape("The validation labels must be a [n] array matching 2 validation"),
    ):
        trainer.fit(_FEATURES, _LABELS, validation_data=(np.zeros((2, 3)), [0]))
    with pytest.raises(
        hubtransfer.DatasetError,
        match=re.escape("A validation label is 3, but there are 2 classes (labels 0 to 1)."),
    ):
        trainer.fit(_FEATURES, _LABELS, validation_data=(np.zeros((2, 3)), [0, 3]))
    assert not hasattr(trainer, "head_")
