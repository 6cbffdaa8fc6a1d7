"""Old name of :mod:`digitlab.serve.registry`: kept until ``digitlab.cli.serve`` imports from ``digitlab.serve``."""

from __future__ import annotations

from digitlab.serve.registry import ModelRegistry

__all__ = ["ModelRegistry"]
