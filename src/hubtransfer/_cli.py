"""The ``hubtransfer`` command line.

Exit codes: 0 success, 1 a hubtransfer error (one line on stderr), 2 a usage
error, 130 interrupted. ``hubtransfer check`` also exits 1 when the data folder
holds files training cannot use (unless ``--fix-into`` wrote a clean copy).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

import numpy as np

__all__ = ["build_parser", "main"]

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _layers(text: str) -> int | str:
    if text == "all":
        return text
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be a positive number of layers or 'all', got {text!r}"
        ) from None


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text!r}")
    return value


def _cmd_backbones(args: argparse.Namespace) -> int:
    from ._registry import list_backbones

    specs = list_backbones(tag=args.tag, output_kind=args.kind)
    if args.json:
        print(json.dumps([spec.to_json() for spec in specs], indent=2))
        return EXIT_OK
    if not specs:
        print("No backbones match.", file=sys.stderr)
        return EXIT_OK
    width = max(len(spec.name) for spec in specs)
    for spec in specs:
        size = f"{spec.input_size[0]}x{spec.input_size[1]}"
        kind = "fv" if spec.output_kind == "feature_vector" else "cls"
        print(f"{spec.name:<{width}}  {kind:<3}  {size:>7}  {spec.output_dim:>6}  {spec.handle}")
    return EXIT_OK


def _cmd_classify(args: argparse.Namespace) -> int:
    from ._classify import ImageClassifier, expand_image_arguments

    paths = expand_image_arguments(args.images)
    if not paths:
        raise _usage_error(f"no images found in {args.images!r}")
    classifier = ImageClassifier(args.backbone, background=args.background)
    results = classifier(paths, top_k=args.top_k)
    if args.json:
        print(json.dumps([result.to_json() for result in results], indent=2))
        return EXIT_OK
    for result in results:
        print(result.source)
        for prediction in result.predictions:
            print(f"  {prediction.score:7.2%}  {prediction.label}")
    return EXIT_OK


def _cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ._folders import MODEL_FOLDER, Protected, WriteRule, check_target

    # Before training, not an hour into it.
    data = ((args.data_dir, "the training data"), (args.evaluate, "the test data"))
    protected = [Protected(path=Path(f), what=what, inside=True) for f, what in data if f]
    rule = WriteRule(
        kind=MODEL_FOLDER, protected=protected, force=args.force, force_hint="pass --force"
    )
    check_target(args.out, rule)
    from ._classifier import TransferClassifier

    if args.plot or args.curves:
        from ._plots import require_matplotlib

        require_matplotlib()  # before training, not after
    model = TransferClassifier(
        args.backbone,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        dropout=args.dropout,
        hidden_units=args.hidden_units,
        label_smoothing=args.label_smoothing,
        l2=args.l2,
        class_weight=args.class_weight,
        early_stopping=not args.no_early_stopping,
        validation_split=args.validation_split,
        seed=args.seed,
        cache_features=not args.no_cache,
        on_bad_image=args.on_bad_image,
        precision=args.precision,
        fine_tune=args.fine_tune,
        fine_tune_epochs=args.fine_tune_epochs,
        fine_tune_learning_rate=args.fine_tune_learning_rate,
        augmentation=args.augment,
        verbose=0 if args.quiet else 1,
    )
    model.fit(args.data_dir)
    saved = model.save(args.out, force=args.force)
    report = model.validation_report_
    if report is not None:
        print("Validation report:")
        print(report.format())
    if model.precision_check_ is not None:
        print(f"Precision check: {model.precision_check_.format()}")
    if model.fine_tune_result_ is not None:
        print(f"Fine-tuning: {model.fine_tune_result_.format()}")
    print(f"Saved the model to {str(saved)!r}.")
    if args.evaluate:
        print(f"Evaluation on {args.evaluate!r}:")
        print(model.evaluate(args.evaluate).format())
    if args.plot:
        from ._plots import plot_folder_predictions

        plot_folder_predictions(
            model, args.evaluate or args.data_dir, args.plot, count=args.plot_count
        )
        print(f"Wrote the prediction grid to {args.plot!r}.")
    if args.curves:
        from ._plots import plot_training_curves

        plot_training_curves(model.history_, args.curves, title=model.backbone_.spec.name)
        print(f"Wrote the training curves to {args.curves!r}.")
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    from ._doctor import check_dataset, fix_into

    limit: dict[str, Any] = {}
    if args.max_pixels is not None:
        limit["max_pixels"] = args.max_pixels or None
    # TensorFlow's C++ decoders log a line per damaged file; the report lists them all.
    with _stderr_muted():
        report = check_dataset(
            args.data_dir,
            validation=args.validation_split,
            seed=args.seed,
            min_size=args.min_size,
            **limit,
        )
        result = fix_into(report, args.fix_into) if args.fix_into else None
    if args.json:
        data = report.to_json()
        if result is not None:
            data["fix"] = result.to_json()
        print(json.dumps(data, indent=2))
    else:
        print(report.format())
        if result is not None:
            print()
            print(result.format())
    if report.bad_files and result is None:
        print(
            f"hubtransfer check: error: {len(report.bad_files)} of {len(report.images)} image "
            "files cannot be used for training. Remove or replace them, or write a cleaned "
            "copy with --fix-into CLEAN_DIR.",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return EXIT_OK


def _cmd_predict(args: argparse.Namespace) -> int:
    from ._classifier import TransferClassifier
    from ._classify import expand_image_arguments

    if args.plot:
        from ._plots import require_matplotlib

        require_matplotlib()
    model = TransferClassifier.load(args.model_dir)
    paths = expand_image_arguments(args.images, recursive=True)
    if not paths:
        raise _usage_error(f"no images found in {args.images!r}")
    probabilities = model.predict_proba(paths)
    classes = [str(c) for c in model.classes_]
    k = min(args.top_k, len(classes))
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    if args.min_confidence is None:
        answers = [classes[int(top[0])] for top in order]
    else:
        from ._calibration import with_unknown

        answers = with_unknown(probabilities, classes, min_confidence=args.min_confidence).tolist()
    results: list[dict[str, Any]] = [
        {
            "source": str(path),
            "label": answer,
            "predictions": [
                {"label": classes[j], "index": int(j), "score": float(row[j])} for j in top
            ],
        }
        for path, answer, row, top in zip(paths, answers, probabilities, order, strict=True)
    ]
    if args.plot:
        from ._plots import load_images_for_display, plot_prediction_grid

        shown = paths[: args.plot_count]
        plot_prediction_grid(
            load_images_for_display(shown),
            [r["label"] for r in results[: len(shown)]],
            args.plot,
        )
    if args.json:
        print(json.dumps(results, indent=2))
        return EXIT_OK
    for result in results:
        best = result["predictions"]
        scores = ", ".join(f"{p['label']} {p['score']:.1%}" for p in best)
        if result["label"] != best[0]["label"]:
            scores = f"{result['label']} (best: {scores})"
        print(f"{result['source']}: {scores}")
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from ._classifier import TransferClassifier
    from ._export import EXPORT_METADATA, export_model

    model = TransferClassifier.load(args.model_dir)
    folder = export_model(
        model,
        args.out,
        format=args.format,
        quantization=args.quantization,
        representative_data=args.representative_data,
        calibrated=not args.uncalibrated,
    )
    with open(folder / EXPORT_METADATA, encoding="utf8") as handle:
        description = json.load(handle)
    if args.json:
        print(json.dumps(description, indent=2))
        return EXIT_OK
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    source, result = description["input"], description["output"]
    print(f"Exported {args.format} ({args.quantization}) to {str(folder)!r}, {size / 1e6:.1f} MB.")
    print(
        f"  input  {source['name']}: {source['dtype']} {source['shape']}, {source['description']}"
    )
    print(
        f"  output {result['name']}: {result['dtype']} {result['shape']}, {result['description']}"
    )
    return EXIT_OK


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from ._classifier import TransferClassifier

    if args.plot or args.reliability:
        from ._plots import require_matplotlib

        require_matplotlib()  # before the images are read, not after
    model = TransferClassifier.load(args.model_dir)
    model.verbose = 0 if args.json else 1
    if args.reliability:
        from ._data import scan_image_folder
        from ._evaluation import evaluation_report
        from ._plots import plot_reliability_diagram

        # One pass over the images: the (calibrated) probabilities give both the report and
        # the diagram. Temperature scaling keeps each row's order, so the report is the one
        # evaluate() gives.
        classes = [str(c) for c in model.classes_]
        collection = scan_image_folder(args.data_dir, classes=classes)
        probabilities = model.predict_proba(list(collection.paths))
        report = evaluation_report(collection.labels, probabilities, classes)
        temperature = model.temperature_
        calibration = (
            "not calibrated (trained without a validation split)"
            if temperature is None
            else f"calibrated (temperature {temperature:.3g})"
        )
        plot_reliability_diagram(
            probabilities,
            collection.labels,
            args.reliability,
            bins=args.bins,
            title=f"{os.path.basename(os.path.normpath(args.model_dir))}: {calibration}",
        )
    else:
        report = model.evaluate(args.data_dir)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.format())
    if args.plot:
        from ._plots import plot_confusion_matrix

        plot_confusion_matrix(report, args.plot, normalize=args.normalize)
        # With --json, stdout holds the JSON alone.
        print(
            f"Wrote the confusion matrix to {args.plot!r}.",
            file=sys.stderr if args.json else sys.stdout,
        )
    if args.reliability:
        print(
            f"Wrote the reliability diagram to {args.reliability!r}.",
            file=sys.stderr if args.json else sys.stdout,
        )
    return EXIT_OK


class _UsageError(Exception):
    pass


def _usage_error(message: str) -> _UsageError:
    return _UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """Builds the argument parser (also used to generate the CLI reference)."""
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog="hubtransfer",
        description="Transfer learning for image classification with TensorFlow-Hub backbones.",
    )
    parser.add_argument("--version", action="version", version=f"hubtransfer {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    backbones = commands.add_parser("backbones", help="list the registered backbones")
    backbones.add_argument("--tag", help="only backbones with this tag (e.g. offline, mobile)")
    backbones.add_argument(
        "--kind", choices=["feature_vector", "classification"], help="only this output kind"
    )
    backbones.add_argument("--json", action="store_true", help="print the specs as JSON")
    backbones.set_defaults(run=_cmd_backbones)

    classify = commands.add_parser(
        "classify", help="classify images into ImageNet classes with a pre-trained backbone"
    )
    classify.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders")
    classify.add_argument(
        "--backbone",
        default="efficientnet_lite0_embedded_classifier",
        help="classification backbone name or handle (default: the embedded, offline one)",
    )
    classify.add_argument("--top-k", type=_positive_int, default=5, help="classes per image")
    classify.add_argument(
        "--background", action="store_true", help="allow TF-Hub's 'background' class"
    )
    classify.add_argument("--json", action="store_true", help="print the results as JSON")
    classify.set_defaults(run=_cmd_classify)

    train = commands.add_parser(
        "train", help="train a classifier on a folder with one sub-folder per class"
    )
    train.add_argument("data_dir", metavar="DATA_DIR", help="folder of class sub-folders")
    train.add_argument(
        "--out",
        required=True,
        metavar="MODEL_DIR",
        help="where to save the model: a new or empty folder, or an earlier model to replace",
    )
    train.add_argument(
        "--force",
        action="store_true",
        help="replace MODEL_DIR even if it holds other files (never the data folders)",
    )
    train.add_argument(
        "--backbone",
        default="efficientnet_lite0_embedded_fv",
        help="feature-vector backbone name or handle (default: the embedded, offline one)",
    )
    train.add_argument(
        "--epochs", type=_positive_int, default=20, help="training epochs of the head"
    )
    train.add_argument(
        "--batch-size", type=_positive_int, default=32, help="features per gradient step"
    )
    train.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's learning rate")
    train.add_argument("--dropout", type=float, default=0.0, help="dropout before the output layer")
    train.add_argument(
        "--hidden-units", type=_positive_int, default=None, help="width of a hidden layer"
    )
    train.add_argument(
        "--label-smoothing", type=float, default=0.0, help="label smoothing of the loss"
    )
    train.add_argument("--l2", type=float, default=0.0, help="L2 penalty on the head's kernels")
    train.add_argument(
        "--class-weight",
        choices=["balanced"],
        default=None,
        help="weigh classes by n / (classes * count), for imbalanced folders",
    )
    train.add_argument(
        "--validation-split",
        type=float,
        default=0.2,
        help="fraction of each class held out (stratified, seeded) for validation",
    )
    train.add_argument(
        "--seed", type=int, default=0, help="seed of the split, initialisation and shuffling"
    )
    train.add_argument(
        "--no-early-stopping",
        action="store_true",
        help="train every epoch (default: stop when the validation loss stalls)",
    )
    train.add_argument("--no-cache", action="store_true", help="do not cache backbone features")
    train.add_argument(
        "--on-bad-image",
        choices=["raise", "skip"],
        default="raise",
        help="image files that cannot be decoded: stop with a list of them (raise), or train "
        "without them (skip)",
    )
    train.add_argument(
        "--precision",
        choices=["float32", "auto", "mixed_float16", "mixed_bfloat16"],
        default="float32",
        help="arithmetic of the backbone: float32, or reduced precision checked against it "
        "(mixed_float16 on NVIDIA GPUs of compute capability 7.0+, mixed_bfloat16 on CPUs, "
        "auto: whichever this machine runs faster, else float32)",
    )
    train.add_argument(
        "--fine-tune",
        type=_layers,
        default=None,
        metavar="N|all",
        help="after the head converges, also train the backbone's top N layers (or all) at a "
        "low learning rate, BatchNorm frozen; slow on a CPU (every epoch runs the backbone)",
    )
    train.add_argument(
        "--fine-tune-epochs", type=_positive_int, default=3, help="epochs of fine-tuning"
    )
    train.add_argument(
        "--fine-tune-learning-rate",
        type=float,
        default=1e-5,
        help="Adam's learning rate while fine-tuning",
    )
    train.add_argument(
        "--augment",
        action="store_true",
        help="random flips, rotations, zooms, brightness and contrast while fine-tuning "
        "(needs --fine-tune: cached features cannot be augmented)",
    )
    train.add_argument("--quiet", action="store_true", help="no progress or per-epoch lines")
    train.add_argument(
        "--evaluate", metavar="TEST_DIR", help="after training, evaluate on this labelled folder"
    )
    train.add_argument(
        "--plot", metavar="PNG", help="write a grid of test (or training) images with predictions"
    )
    train.add_argument("--plot-count", type=_positive_int, default=64, help="images in the grid")
    train.add_argument(
        "--curves", metavar="PNG", help="write the loss and accuracy per epoch (training curves)"
    )
    train.set_defaults(run=_cmd_train)

    check = commands.add_parser(
        "check",
        help="check a folder of class sub-folders for files training cannot use, duplicates, "
        "rotated photos and more",
    )
    check.add_argument("data_dir", metavar="DATA_DIR", help="folder of class sub-folders")
    check.add_argument(
        "--fix-into",
        metavar="OUT_DIR",
        help="write a cleaned copy to this new folder (DATA_DIR is not changed)",
    )
    check.add_argument(
        "--validation-split",
        type=float,
        default=0.2,
        help="the validation split `train` will make, checked for identical files on both sides",
    )
    check.add_argument("--seed", type=int, default=0, help="the seed `train` will split with")
    check.add_argument(
        "--min-size", type=int, default=32, help="flag images with a side under this many pixels"
    )
    check.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="refuse images with more pixels (default 89,478,485; 0 for no limit)",
    )
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(run=_cmd_check)

    predict = commands.add_parser("predict", help="predict classes with a trained model")
    predict.add_argument("model_dir", metavar="MODEL_DIR", help="a model saved by train")
    predict.add_argument(
        "images", nargs="+", metavar="IMAGE_OR_DIR", help="image files or folders (recursive)"
    )
    predict.add_argument("--top-k", type=_positive_int, default=1, help="classes per image")
    predict.add_argument("--json", action="store_true", help="print the results as JSON")
    predict.add_argument(
        "--min-confidence",
        type=_probability,
        default=None,
        metavar="P",
        help="answer 'unknown' where the top (calibrated) probability is below P",
    )
    predict.add_argument(
        "--plot", metavar="PNG", help="write a grid of images titled with predictions"
    )
    predict.add_argument("--plot-count", type=_positive_int, default=64, help="images in the grid")
    predict.set_defaults(run=_cmd_predict)

    evaluate = commands.add_parser(
        "evaluate", help="evaluate a trained model on a folder of class sub-folders"
    )
    evaluate.add_argument("model_dir", metavar="MODEL_DIR", help="a model saved by train")
    evaluate.add_argument(
        "data_dir", metavar="DATA_DIR", help="labelled folder: one sub-folder per class"
    )
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")
    evaluate.add_argument("--plot", metavar="PNG", help="write the confusion matrix")
    evaluate.add_argument(
        "--normalize",
        choices=["true", "pred", "all"],
        default=None,
        help="with --plot: fractions of each true class (rows), predicted class (columns) "
        "or all images, instead of counts",
    )
    evaluate.add_argument(
        "--reliability",
        metavar="PNG",
        help="write the reliability (calibration) diagram: accuracy per confidence bin, "
        "with the expected calibration error",
    )
    evaluate.add_argument(
        "--bins",
        type=_positive_int,
        default=15,
        metavar="N",
        help="with --reliability: equal-width confidence bins",
    )
    evaluate.set_defaults(run=_cmd_evaluate)

    export = commands.add_parser(
        "export", help="export a trained model as a SavedModel, a Keras model or a TFLite file"
    )
    export.add_argument("model_dir", metavar="MODEL_DIR")
    export.add_argument(
        "out", metavar="OUT", help="folder to write (an earlier export there is replaced)"
    )
    export.add_argument(
        "--format", choices=["saved_model", "tflite", "keras"], default="saved_model"
    )
    export.add_argument(
        "--quantization",
        choices=["float32", "float16", "dynamic_int8", "int8"],
        default="float32",
        help="TFLite only; int8 needs --representative-data",
    )
    export.add_argument(
        "--representative-data",
        metavar="DIR",
        help="images to calibrate int8 with (the training folder is ideal)",
    )
    export.add_argument(
        "--uncalibrated", action="store_true", help="export without the fitted temperature"
    )
    export.add_argument("--json", action="store_true", help="print the export's description")
    export.set_defaults(run=_cmd_export)
    return parser


@contextlib.contextmanager
def _stderr_muted() -> Iterator[None]:
    """Mutes the process's file descriptor 2, which TensorFlow's C++ logging writes to.

    Python's ``sys.stderr`` is flushed first and restored after; an exception
    raised inside still propagates (and is printed) once stderr is back.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _quiet_tensorflow() -> None:
    """Loads TensorFlow and its devices with the process's stderr muted.

    TensorFlow's C++ start-up lines (oneDNN, CUDA probing) ignore
    ``TF_CPP_MIN_LOG_LEVEL`` and would bury the one line a script reads.
    A failed import still raises its Python exception as usual.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    with _stderr_muted():
        import tensorflow as tf

        tf.config.list_physical_devices()
        tf.constant(0.0)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "backbones":
        _quiet_tensorflow()
    from ._exceptions import HubTransferError

    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except _UsageError as error:
        parser.print_usage(sys.stderr)
        print(f"hubtransfer {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except HubTransferError as error:
        message = " ".join(str(error).split())
        print(f"hubtransfer {args.command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("hubtransfer: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as error:
        if isinstance(error, BrokenPipeError):
            raise
        # A read-only folder, a full disk, a missing permission: one line, not a traceback.
        from ._cache import cache_dir
        from ._files import describe_os_error

        message = describe_os_error(error, cache=str(cache_dir()))
        print(f"hubtransfer {args.command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
