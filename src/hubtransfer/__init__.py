"""hubtransfer: typed, pluggable transfer learning with TensorFlow-Hub backbones.

Load a pre-trained backbone by name or handle, classify images into ImageNet
classes, or train a head on your own classes::

    import hubtransfer

    [result] = hubtransfer.classify("photo.jpg")
    print(result.top.label)
"""

from ._backbone import Backbone as Backbone
from ._backbone import load_backbone as load_backbone
from ._backbone import resolve_spec as resolve_spec
from ._backbone import spec_from_handle as spec_from_handle
from ._cache import cache_dir as cache_dir
from ._cache import hub_cache_dir as hub_cache_dir
from ._calibration import CalibrationReport as CalibrationReport
from ._calibration import ReliabilityCurve as ReliabilityCurve
from ._calibration import apply_temperature as apply_temperature
from ._calibration import calibration_report as calibration_report
from ._calibration import confidence_threshold as confidence_threshold
from ._calibration import expected_calibration_error as expected_calibration_error
from ._calibration import fit_temperature as fit_temperature
from ._calibration import negative_log_likelihood as negative_log_likelihood
from ._calibration import reliability_curve as reliability_curve
from ._calibration import with_unknown as with_unknown
from ._catalog import DEFAULT_BACKBONE as DEFAULT_BACKBONE
from ._catalog import DEFAULT_CLASSIFIER as DEFAULT_CLASSIFIER
from ._classifier import TransferClassifier as TransferClassifier
from ._classify import Classification as Classification
from ._classify import ImageClassifier as ImageClassifier
from ._classify import classify as classify
from ._data import IMAGE_EXTENSIONS as IMAGE_EXTENSIONS
from ._data import DataSplit as DataSplit
from ._data import ImageCollection as ImageCollection
from ._data import SkippedFile as SkippedFile
from ._data import SkipReason as SkipReason
from ._data import from_paths as from_paths
from ._data import scan_image_folder as scan_image_folder
from ._data import stratified_split as stratified_split
from ._doctor import BadImage as BadImage
from ._doctor import BadImageKind as BadImageKind
from ._doctor import ClassSummary as ClassSummary
from ._doctor import DatasetReport as DatasetReport
from ._doctor import DatasetWarning as DatasetWarning
from ._doctor import FixAction as FixAction
from ._doctor import FixResult as FixResult
from ._doctor import ImageRecord as ImageRecord
from ._doctor import WarningKind as WarningKind
from ._doctor import check_dataset as check_dataset
from ._doctor import find_bad_images as find_bad_images
from ._doctor import fix_into as fix_into
from ._evaluation import ClassMetrics as ClassMetrics
from ._evaluation import EvaluationReport as EvaluationReport
from ._evaluation import evaluation_report as evaluation_report
from ._exceptions import BackbonePluginError as BackbonePluginError
from ._exceptions import BrokenCacheEntryError as BrokenCacheEntryError
from ._exceptions import ConcurrentFitError as ConcurrentFitError
from ._exceptions import DatasetError as DatasetError
from ._exceptions import DuplicateBackboneError as DuplicateBackboneError
from ._exceptions import EmbeddedBackboneError as EmbeddedBackboneError
from ._exceptions import ExportError as ExportError
from ._exceptions import HandleError as HandleError
from ._exceptions import HandleUnreachableError as HandleUnreachableError
from ._exceptions import HubTransferError as HubTransferError
from ._exceptions import ImageDecodeError as ImageDecodeError
from ._exceptions import InvalidParameterError as InvalidParameterError
from ._exceptions import LabelMapError as LabelMapError
from ._exceptions import ModelFormatError as ModelFormatError
from ._exceptions import NotFittedError as NotFittedError
from ._exceptions import ShardTimeoutError as ShardTimeoutError
from ._exceptions import UnknownBackboneError as UnknownBackboneError
from ._exceptions import UnsafeArchiveError as UnsafeArchiveError
from ._export import ExportFormat as ExportFormat
from ._export import Quantization as Quantization
from ._export import export_model as export_model
from ._features import FeatureStore as FeatureStore
from ._features import extract_features as extract_features
from ._features import file_digest as file_digest
from ._finetune import Augmentation as Augmentation
from ._finetune import FineTuneResult as FineTuneResult
from ._finetune import trainable_groups as trainable_groups
from ._handles import DownloadLimits as DownloadLimits
from ._handles import HandleResolver as HandleResolver
from ._handles import cache_entry_for as cache_entry_for
from ._handles import download_limits as download_limits
from ._handles import redact_url as redact_url
from ._handles import register_resolver as register_resolver
from ._handles import resolve_handle as resolve_handle
from ._head import HeadTrainer as HeadTrainer
from ._head import balanced_class_weights as balanced_class_weights
from ._labels import LabelMap as LabelMap
from ._labels import Prediction as Prediction
from ._plots import load_images_for_display as load_images_for_display
from ._plots import plot_confusion_matrix as plot_confusion_matrix
from ._plots import plot_folder_predictions as plot_folder_predictions
from ._plots import plot_prediction_grid as plot_prediction_grid
from ._plots import plot_reliability_diagram as plot_reliability_diagram
from ._plots import plot_training_curves as plot_training_curves
from ._precision import MIN_PRECISION_AGREEMENT as MIN_PRECISION_AGREEMENT
from ._precision import Precision as Precision
from ._precision import PrecisionCheck as PrecisionCheck
from ._precision import PrecisionSupport as PrecisionSupport
from ._precision import precision_support as precision_support
from ._preprocessing import DEFAULT_MAX_PIXELS as DEFAULT_MAX_PIXELS
from ._preprocessing import Preprocessor as Preprocessor
from ._registry import BackboneRegistry as BackboneRegistry
from ._registry import default_registry as default_registry
from ._registry import get_backbone_spec as get_backbone_spec
from ._registry import list_backbones as list_backbones
from ._registry import register_backbone as register_backbone
from ._runtime import FeatureRuntime as FeatureRuntime
from ._runtime import OpenVINORuntime as OpenVINORuntime
from ._runtime import OpenVINOUnavailableError as OpenVINOUnavailableError
from ._runtime import TensorFlowRuntime as TensorFlowRuntime
from ._runtime import TFLiteRuntime as TFLiteRuntime
from ._runtime import TFLiteUnavailableError as TFLiteUnavailableError
from ._runtime import select_runtime as select_runtime
from ._runtime import tflite_model_for as tflite_model_for
from ._spec import BackboneSpec as BackboneSpec
from ._spec import OutputKind as OutputKind
from ._spec import PreprocessingContract as PreprocessingContract
from ._version import __version__ as __version__

__all__ = [
    "DEFAULT_BACKBONE",
    "DEFAULT_CLASSIFIER",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "MIN_PRECISION_AGREEMENT",
    "Augmentation",
    "Backbone",
    "BackbonePluginError",
    "BackboneRegistry",
    "BackboneSpec",
    "BadImage",
    "BadImageKind",
    "BrokenCacheEntryError",
    "CalibrationReport",
    "ClassMetrics",
    "ClassSummary",
    "Classification",
    "ConcurrentFitError",
    "DataSplit",
    "DatasetError",
    "DatasetReport",
    "DatasetWarning",
    "DownloadLimits",
    "DuplicateBackboneError",
    "EmbeddedBackboneError",
    "EvaluationReport",
    "ExportError",
    "ExportFormat",
    "FeatureRuntime",
    "FeatureStore",
    "FineTuneResult",
    "FixAction",
    "FixResult",
    "HandleError",
    "HandleResolver",
    "HandleUnreachableError",
    "HeadTrainer",
    "HubTransferError",
    "ImageClassifier",
    "ImageCollection",
    "ImageDecodeError",
    "ImageRecord",
    "InvalidParameterError",
    "LabelMap",
    "LabelMapError",
    "ModelFormatError",
    "NotFittedError",
    "OpenVINORuntime",
    "OpenVINOUnavailableError",
    "OutputKind",
    "Precision",
    "PrecisionCheck",
    "PrecisionSupport",
    "Prediction",
    "PreprocessingContract",
    "Preprocessor",
    "Quantization",
    "ReliabilityCurve",
    "ShardTimeoutError",
    "SkipReason",
    "SkippedFile",
    "TFLiteRuntime",
    "TFLiteUnavailableError",
    "TensorFlowRuntime",
    "TransferClassifier",
    "UnknownBackboneError",
    "UnsafeArchiveError",
    "WarningKind",
    "__version__",
    "apply_temperature",
    "balanced_class_weights",
    "cache_dir",
    "cache_entry_for",
    "calibration_report",
    "check_dataset",
    "classify",
    "confidence_threshold",
    "default_registry",
    "download_limits",
    "evaluation_report",
    "expected_calibration_error",
    "export_model",
    "extract_features",
    "file_digest",
    "find_bad_images",
    "fit_temperature",
    "fix_into",
    "from_paths",
    "get_backbone_spec",
    "hub_cache_dir",
    "list_backbones",
    "load_backbone",
    "load_images_for_display",
    "negative_log_likelihood",
    "plot_confusion_matrix",
    "plot_folder_predictions",
    "plot_prediction_grid",
    "plot_reliability_diagram",
    "plot_training_curves",
    "precision_support",
    "redact_url",
    "register_backbone",
    "register_resolver",
    "reliability_curve",
    "resolve_handle",
    "resolve_spec",
    "scan_image_folder",
    "select_runtime",
    "spec_from_handle",
    "stratified_split",
    "tflite_model_for",
    "trainable_groups",
    "with_unknown",
]
