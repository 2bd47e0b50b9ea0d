"""Graph simplification with onnxslim, done once on the hub model before any target is made."""

from __future__ import annotations

import logging
from typing import Any

import onnx

log = logging.getLogger("edge_sdk.converters.graph.simplify")


def simplify(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """Constant-fold and clean ``model``; returns the new model and what was done.

    A failure of the simplifier is not fatal (the model is still valid as it is), but it is never
    silent: it is logged as a warning and recorded in every artifact's recipe.
    """
    try:
        import onnxslim
    except ImportError:
        log.warning("onnxslim is not installed; converting the model unsimplified")
        return model, {"tool": None, "status": "skipped: onnxslim not installed (pip install onnxslim)"}
    before = len(model.graph.node)
    try:
        slim = onnxslim.slim(model)
    except Exception as e:
        log.warning("onnxslim failed (%s: %s); converting the model unsimplified", type(e).__name__, e)
        return model, {
            "tool": f"onnxslim {onnxslim.__version__}",
            "status": f"failed: {type(e).__name__}: {e}",
        }
    return slim, {
        "tool": f"onnxslim {onnxslim.__version__}",
        "status": "done",
        "nodes_before": before,
        "nodes_after": len(slim.graph.node),
    }
