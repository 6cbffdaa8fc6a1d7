"""Small helpers shared by the server tests."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image


def png_bytes(arr: np.ndarray) -> bytes:
    """Encode a uint8 array as PNG."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(arr, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def b64(data: bytes) -> str:
    """Base64 text of bytes."""
    return base64.b64encode(data).decode("ascii")
