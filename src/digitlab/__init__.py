"""digitlab: handwritten digit recognition as a workbench and a service.

The library is what the CLI and the HTTP server are built on::

    from digitlab.data import load_mnist
    from digitlab.models import make_model

    x, y = load_mnist(split="train")
    model = make_model("centroid").fit(x, y)
"""

from __future__ import annotations

from digitlab.errors import DataError, DigitlabError, UserError

__version__ = "0.1.0"

__all__ = ["DataError", "DigitlabError", "UserError", "__version__"]
