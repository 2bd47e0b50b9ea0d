"""Per-layer quantisation sensitivity, measured: each layer is quantised on its own (all others float)
and the model's outputs are compared with fp32 on the calibration samples. The score is the mean
relative L2 error of the outputs, so a layer whose int8 form alone moves the outputs most ranks first.

One-at-a-time isolates each layer's own damage (an error early in a network also shows up in every
tensor after it, so comparing intermediate tensors would blame the layers downstream of the culprit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def output_error(session: Any, samples: Sequence[dict[str, np.ndarray]], reference: list[dict]) -> float:
    """Mean over samples and outputs of ‖y − y_ref‖ / ‖y_ref‖ (float64)."""
    errors = []
    for sample, ref in zip(samples, reference, strict=True):
        got = session.run(sample)
        for name, want in ref.items():
            w = np.asarray(want, np.float64)
            g = np.asarray(got[name], np.float64).reshape(w.shape)
            errors.append(float(np.linalg.norm(g - w) / max(np.linalg.norm(w), 1e-12)))
    return float(np.mean(errors)) if errors else 0.0


def one_at_a_time(
    layers: Sequence[str],
    quantise: Callable[[frozenset[str]], Any],
    samples: Sequence[dict[str, np.ndarray]],
    reference: list[dict],
    report: Callable[[str, int, int | None], None],
) -> list[tuple[str, float]]:
    """Rank ``layers`` worst first by the output error with only that layer quantised. ``quantise(kept)``
    makes a candidate (with ``.session``) with the layers in ``kept`` left float."""
    everything = frozenset(layers)
    scores = []
    for i, name in enumerate(layers):
        report("sensitivity", i, len(layers))
        cand = quantise(everything - {name})
        scores.append((name, output_error(cand.session, samples, reference)))
    report("sensitivity", len(layers), len(layers))
    return sorted(scores, key=lambda s: -s[1])
