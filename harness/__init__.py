"""harness: robustness and fairness evaluation for medical image segmentation models."""
from __future__ import annotations

__version__ = "0.1.0"

from harness.case import Case  # noqa: E402
from harness.errors import ConfigError, HarnessError, ModelError  # noqa: E402

__all__ = ["Case", "ConfigError", "HarnessError", "ModelError", "__version__"]
