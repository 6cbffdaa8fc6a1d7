"""Every model family behind one scikit-learn-style API.

Models are looked up by their CLI name in :data:`MODELS` and built with
:func:`make_model`; classes are imported lazily so that, for example, torch
is only imported when the CNN is used.
"""

from __future__ import annotations

import importlib
from typing import Any

from digitlab.errors import NotFoundError, UserError

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


def model_class(name: str) -> type:
    """The estimator class registered under ``name``."""
    try:
        module, cls = MODELS[name].split(":")
    except KeyError:
        raise NotFoundError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}") from None
    return getattr(importlib.import_module(module), cls)


def model_name_of(estimator: Any) -> str:
    """The registered CLI name of an estimator instance."""
    path = f"{type(estimator).__module__}:{type(estimator).__name__}"
    for name, target in MODELS.items():
        if target == path:
            return name
    raise UserError(f"{type(estimator).__name__} is not a registered digitlab model")


def make_model(name: str, **params: Any) -> Any:
    """Build an unfitted estimator by CLI name with keyword parameters.

    Raises
    ------
    NotFoundError
        Unknown model name.
    UserError
        Unknown parameter (the message lists the valid ones).
    """
    cls = model_class(name)
    valid = cls().get_params()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise UserError(f"unknown parameter {unknown[0]!r} for model {name!r}; valid: {', '.join(sorted(valid))}")
    return cls(**params)
