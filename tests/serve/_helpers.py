"""Small helpers shared by the server tests."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

#: Settings of the servers the tests start: no heap freezing in a test process, TestClient's Host name accepted,
#: models other than the default loaded at first use (tests that check preloading ask for it).
TEST_SETTINGS = {"freeze_gc": False, "allowed_hosts": ("testserver",), "preload": False}


def png_bytes(arr: np.ndarray) -> bytes:
    """Encode a uint8 array as PNG."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(arr, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def b64(data: bytes) -> str:
    """Base64 text of bytes."""
    return base64.b64encode(data).decode("ascii")
