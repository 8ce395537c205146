"""The ``hubtransfer`` command line.

Exit codes: 0 success, 1 a hubtransfer error (one line on stderr), 2 a usage
error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Final

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
    return parser


def _quiet_tensorflow() -> None:
    # TensorFlow's C++ start-up chatter would bury the one line a script reads.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit code."""
    _quiet_tensorflow()
    parser = build_parser()
    args = parser.parse_args(argv)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
