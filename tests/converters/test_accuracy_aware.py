"""Accuracy-aware int8 on onnx, openvino and tflite: a digits classifier (scikit-learn's real handwriting)
whose input carries one large-range channel the network ignores. Per-tensor int8 of that input spends its
range on the outlier and the pixels fall into one or two steps, so plain int8 loses most of its accuracy
(shown first); the accuracy-aware path must find, by measurement, that the first layer is the one to keep
in float, meet the goal, and record what it did. An impossible goal gives the clear "cannot" error.

The targets are called directly with a BuildContext (``convert()`` passes ``evaluate``/``max_drop`` into
the same fields).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_sdk.converters.options import defaults
from edge_sdk.converters.quantize.accuracy_aware import AccuracyGoal, Candidate, open_candidate, search
from edge_sdk.converters.targets import TARGETS, BuildContext, parse_target
from edge_sdk.errors import BadInputError, ConversionError

torch = pytest.importorskip("torch", reason="needs the torch extra")
sklearn_datasets = pytest.importorskip("sklearn.datasets", reason="needs scikit-learn for load_digits")

GOAL = 0.01  # absolute accuracy


class Digits:
    """The trained classifier as an ONNX file, with its data split."""

    def __init__(self, tmp: Path) -> None:
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        x, y = sklearn_datasets.load_digits(return_X_y=True)
        x = (x / 16.0).astype(np.float32)
        outlier = (rng.standard_normal((len(x), 1)) * 300).astype(np.float32)
        self.x, self.y = np.concatenate([x, outlier], axis=1), y
        order = rng.permutation(len(x))
        self.train, self.test = order[:1200], order[1200:]
        net = torch.nn.Sequential(
            torch.nn.Linear(65, 64),
            torch.nn.ReLU(),
            torch.nn.Linear(64, 64),
            torch.nn.ReLU(),
            torch.nn.Linear(64, 10),
        )
        opt = torch.optim.Adam(net.parameters(), 1e-2)
        xt, yt = torch.from_numpy(self.x[self.train]), torch.from_numpy(self.y[self.train])
        for _ in range(60):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt), yt).backward()
            opt.step()
            with torch.no_grad():  # the outlier channel carries nothing: the network ignores it
                net[0].weight[:, 64] = 0
        self.hub = tmp / "digits.onnx"
        torch.onnx.export(
            net.eval(),
            (torch.from_numpy(self.x[:1]),),
            str(self.hub),
            input_names=["x"],
            output_names=["logits"],
            dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}},
            dynamo=False,
        )
        self.calibration = [{"x": self.x[self.train[i : i + 8]]} for i in range(0, 256, 8)]
        with torch.no_grad():
            self.reference = net(torch.from_numpy(self.x[self.test])).numpy()

    def logits(self, session: Any) -> np.ndarray:
        batch = session.inputs[0].shape[0]  # tflite fixes the batch axis to 1
        step = batch if isinstance(batch, int) and batch > 0 else len(self.test)
        rows = [self.x[self.test[i : i + step]] for i in range(0, len(self.test), step)]
        return np.concatenate([session.run({"x": r})["logits"] for r in rows])

    def accuracy(self, session: Any) -> float:
        return float((self.logits(session).argmax(1) == self.y[self.test]).mean())

    def fidelity(self, session: Any) -> float:
        """Minus the mean absolute distance of the logits from fp32's: 0 for fp32, below 0 for any int8
        model, so no int8 model can meet a zero drop."""
        return 0.0 - float(np.abs(self.logits(session) - self.reference).mean())


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Digits:
    return Digits(tmp_path_factory.mktemp("digits"))


def _build(
    fmt: str, digits: Digits, out: Path, evaluate: Any = None, goal: Any = None
) -> tuple[Any, dict, list]:
    """Build ``fmt:int8`` (accuracy-aware when ``evaluate`` is given) and open it as the runtime would."""
    import onnx

    from edge_sdk.converters.graph.onnx_model import tensor_specs

    target, _ = parse_target(f"{fmt}:int8")
    ok, why = target.available()
    if not ok:
        pytest.skip(why)
    events: list[tuple[str, int, int | None]] = []
    ctx = BuildContext(
        calibration_samples=digits.calibration,
        options=defaults(target),
        evaluate=evaluate,
        accuracy_goal=goal,
        progress=lambda stage, done, total: events.append((stage, done, total)),
    )
    out.mkdir()
    result = target.build(digits.hub, "int8", out, ctx)
    ins, outs = tensor_specs(onnx.load(str(digits.hub)))
    session = open_candidate(
        out, fmt, "int8", result.files, result.inputs or ins, result.outputs or outs, result.quantization
    )
    return session, result.recipe, events


@pytest.fixture(scope="module")
def fp32_accuracy(digits: Digits, tmp_path_factory: pytest.TempPathFactory) -> float:
    import onnx

    from edge_sdk.converters.graph.onnx_model import tensor_specs

    ins, outs = tensor_specs(onnx.load(str(digits.hub)))
    d = tmp_path_factory.mktemp("fp32")
    (d / "model.onnx").write_bytes(digits.hub.read_bytes())
    acc = digits.accuracy(open_candidate(d, "onnx", "fp32", ["model.onnx"], ins, outs))
    assert acc > 0.93, "the classifier did not train"
    return acc


@pytest.mark.parametrize("fmt", ["onnx", pytest.param("openvino", marks=pytest.mark.openvino)])
def test_plain_int8_really_drops(fmt: str, digits: Digits, fp32_accuracy: float, tmp_path: Path) -> None:
    session, recipe, _ = _build(fmt, digits, tmp_path / fmt)
    acc = digits.accuracy(session)
    print(f"{fmt}: fp32 {fp32_accuracy:.4f}, plain int8 {acc:.4f}")
    assert "accuracy_aware" not in recipe
    assert acc < fp32_accuracy - 0.3


@pytest.mark.parametrize(
    "fmt",
    [
        "onnx",
        pytest.param("openvino", marks=pytest.mark.openvino),
        pytest.param("tflite", marks=pytest.mark.tflite),
    ],
)
def test_accuracy_aware_meets_the_goal(
    fmt: str, digits: Digits, fp32_accuracy: float, tmp_path: Path
) -> None:
    session, recipe, events = _build(fmt, digits, tmp_path / fmt, digits.accuracy, AccuracyGoal(GOAL))
    acc = digits.accuracy(session)
    rec = recipe["accuracy_aware"]
    print(
        f"{fmt}: fp32 {rec['metric_fp32']:.4f}, plain int8 {rec['metric_int8_plain']:.4f}, accuracy-aware "
        f"{acc:.4f}, kept float {rec['kept_float']}, {rec['evaluations']} evaluations"
    )
    assert rec["goal"] == {"max_drop": GOAL, "drop_type": "absolute"}
    assert rec["goal_met"] and rec["metric_fp32"] - rec["metric_int8"] <= GOAL + 1e-9
    assert acc == pytest.approx(rec["metric_int8"])  # the artifact written is the one evaluated
    assert rec["metric_int8_plain"] < rec["metric_fp32"] - GOAL  # the search was needed
    # Measured, not guessed: the first layer (the one that reads the outlier input) stays float, and
    # at least one layer is still int8.
    assert 1 <= len(rec["kept_float"]) < 3
    first = {"onnx": "/0/Gemm", "openvino": "/0/Gemm", "tflite": "model/tf.linalg.matmul/MatMul"}[fmt]
    assert any(name.startswith(first) for name in rec["kept_float"])
    assert rec["evaluations"] >= 3
    assert any(stage == "accuracy search" for stage, _, _ in events)


def test_impossible_goal_says_so(digits: Digits, tmp_path: Path) -> None:
    with pytest.raises(ConversionError) as err:
        _build("onnx", digits, tmp_path / "onnx", digits.fidelity, AccuracyGoal(0.0))
    text = str(err.value)
    print(text)
    assert "cannot meet the goal" in text and "best int8 reached" in text and "in float:" in text


def test_goal_parsing() -> None:
    assert AccuracyGoal.parse(0.01) == AccuracyGoal(0.01)
    assert AccuracyGoal.parse("1%") == AccuracyGoal(0.01, relative=True)
    assert AccuracyGoal.parse("1%").met(0.9, 0.892) and not AccuracyGoal.parse("1%").met(0.9, 0.88)
    with pytest.raises(BadInputError):
        AccuracyGoal.parse("one percent")
    with pytest.raises(BadInputError):
        AccuracyGoal(-0.1)


def test_search_keeps_the_most_sensitive_first() -> None:
    """The shared search on a stand-in: layer 'b' alone costs 0.3, 'c' 0.05; a goal of 0.1 needs 'b'."""
    cost = {"a": 0.01, "b": 0.3, "c": 0.05, "d": 0.02}
    tried: list[frozenset[str]] = []

    def quantise(kept: frozenset[str]) -> Candidate:
        tried.append(kept)
        return Candidate(Path("."), 1.0 - sum(v for k, v in cost.items() if k not in kept))

    ranking = sorted(cost.items(), key=lambda kv: -kv[1])
    best, outcome = search(quantise, lambda s: s, 1.0, AccuracyGoal(0.1), ranking, lambda *a: None)
    assert outcome.met and outcome.kept_float == ["b"] and math.isclose(best.session, 0.92)
    assert tried == [frozenset(), frozenset({"b"})]
    _, hopeless = search(quantise, lambda s: s, 1.0, AccuracyGoal(0.0), ranking, lambda *a: None)
    assert not hopeless.met and len(hopeless.kept_float) == 3  # one layer always stays int8
    assert "cannot meet the goal" in str(hopeless.failure("x:int8"))


def test_registered_targets_know_the_fields() -> None:
    ctx = BuildContext()
    assert ctx.evaluate is None and ctx.accuracy_goal is None
    assert {"onnx", "openvino", "tflite"} <= {name for name, _ in TARGETS}


def test_through_convert_into_the_manifest(digits: Digits, tmp_path: Path) -> None:
    """``convert(evaluate=, max_drop=)`` reaches the target; artifact.json lists what stayed float."""
    import inspect
    import json

    import edge_sdk

    if "max_drop" not in inspect.signature(edge_sdk.convert).parameters:
        pytest.skip("convert() does not take max_drop yet")
    (art,) = edge_sdk.convert(
        str(digits.hub),
        "onnx:int8",
        calibration=digits.calibration,
        evaluate=digits.accuracy,
        max_drop="1%",
        out=tmp_path,
    )
    rec = json.loads((art.path / "artifact.json").read_text())["recipe"]["accuracy_aware"]
    assert rec["goal"] == {"max_drop": 0.01, "drop_type": "relative"}
    assert rec["goal_met"] and rec["kept_float"] == ["/0/Gemm"]
    assert digits.accuracy(edge_sdk.load(art.path)) >= rec["metric_fp32"] * 0.99 - 1e-9
