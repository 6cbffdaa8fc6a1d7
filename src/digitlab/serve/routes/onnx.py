"""``GET /v1/models/{name}/onnx``: a served model as an ONNX file, what the page runs in the browser.

The file takes ``pixels`` (uint8 ``[N, 784]``) and gives ``probabilities`` and
``label`` (:func:`digitlab.export_page.browser_model_bytes`); it is made once per
loaded model and kept with it.
"""

from __future__ import annotations

import weakref

from fastapi import APIRouter
from fastapi.responses import Response

from digitlab.export_page import browser_model_bytes
from digitlab.models.base import DigitClassifier
from digitlab.serve.errors import error_responses
from digitlab.serve.state import AppStateDep

__all__ = ["router"]

router = APIRouter(tags=["models"])
_MADE: weakref.WeakKeyDictionary[DigitClassifier, bytes] = weakref.WeakKeyDictionary()


def _onnx_of(estimator: DigitClassifier) -> bytes:
    data = _MADE.get(estimator)
    if data is None:
        data = _MADE[estimator] = browser_model_bytes(estimator)
    return data


@router.get("/v1/models/{name}/onnx", response_class=Response, responses={
    200: {"content": {"application/octet-stream": {}},
          "description": "ONNX model: pixels uint8 [N, 784] -> probabilities float32 [N, 10], label int64 [N]"},
    **error_responses(404, 422, 500)})
async def model_onnx(name: str, state: AppStateDep) -> Response:
    """The model as ONNX (uint8 pixels in, probabilities and label out), as the page runs it in the browser.

    422 when the model cannot run in the browser (only CNNs with an int8 graph can, for now).
    """
    served = await state.model(name)
    data = await state.on_cpu(_onnx_of, served.estimator)
    return Response(data, media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{served.name}.onnx"',
                             "Cache-Control": "no-cache"})
