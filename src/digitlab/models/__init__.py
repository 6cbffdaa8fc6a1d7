"""Every model family behind one scikit-learn-style API.

Models are looked up by their CLI name in :data:`MODELS` and built with
:func:`make_model`; classes are imported lazily so that, for example, torch
is only imported when the CNN is used.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from digitlab.errors import NotFoundError, ParameterError

if TYPE_CHECKING:
    from digitlab.models.base import DigitClassifier

__all__ = ["MODELS", "make_model", "model_class", "model_name_of"]

#: CLI name -> "module:Class". Only these classes are ever built from a saved file.
MODELS: dict[str, str] = {
    "centroid": "digitlab.models.centroid:NearestCentroidClassifier",
    "cnn": "digitlab.models.cnn:CNNClassifier",
    "logreg": "digitlab.models.logreg:LogisticRegressionClassifier",
    "sgd": "digitlab.models.sgd:BinarySGDClassifier",
    "svm-linear": "digitlab.models.svm_linear:LinearSVMClassifier",
    "svm-rbf": "digitlab.models.svm_rbf:RBFSVMClassifier",
    "svm-poly": "digitlab.models.svm_poly:PolySVMClassifier",
    "svm-sigmoid": "digitlab.models.svm_sigmoid:SigmoidSVMClassifier",
    "trees": "digitlab.models.trees:BaggedBoostedTreesClassifier",
    "dpmm": "digitlab.models.dpmm:DPMixtureClassifier",
}


def model_class(name: str) -> type[DigitClassifier]:
    """The estimator class registered under ``name``.

    Raises
    ------
    NotFoundError
        Unknown model name (the message lists the known ones).
    """
    try:
        module, cls = MODELS[name].split(":")
    except KeyError:
        raise NotFoundError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}") from None
    found: type[DigitClassifier] = getattr(importlib.import_module(module), cls)
    return found


def model_name_of(estimator: object) -> str:
    """The registered CLI name of an estimator instance.

    Raises
    ------
    ParameterError
        The estimator's class is not registered in :data:`MODELS`.
    """
    for name, target in MODELS.items():
        module, cls = target.split(":")
        loaded = sys.modules.get(module)  # an instance exists, so its class's module is imported
        if loaded is not None and getattr(loaded, cls, None) is type(estimator):
            return name
    raise ParameterError(f"{type(estimator).__name__} is not a registered digitlab model")


def make_model(name: str, **params: Any) -> DigitClassifier:
    """Build an unfitted estimator by CLI name with keyword parameters.

    Raises
    ------
    NotFoundError
        Unknown model name.
    ParameterError
        Unknown parameter (the message lists the valid ones).
    """
    cls = model_class(name)
    valid = cls().get_params()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ParameterError(f"unknown parameter {unknown[0]!r} for model {name!r}; "
                             f"valid: {', '.join(sorted(valid))}")
    return cls(**params)
