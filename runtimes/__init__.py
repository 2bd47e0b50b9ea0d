"""One ``Session`` over onnxruntime (and, as they land, OpenVINO and LiteRT), and ``load()`` that picks it."""

from edge_sdk.runtimes.loader import load
from edge_sdk.runtimes.session import BACKENDS, Candidate, Selection, Session

__all__ = ["BACKENDS", "Candidate", "Selection", "Session", "load"]
