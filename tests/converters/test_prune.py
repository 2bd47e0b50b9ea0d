"""Pruning (``edge_sdk.converters.prune``): channel targets met, dependencies kept consistent, what must stay
stays, sparsity made permanent, the user's module untouched, and the result exports and runs."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edge_sdk
from edge_sdk.errors import BadInputError

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch", reason="needs the torch extra (pip install 'edge-sdk[torch]')")
pytest.importorskip("torch_pruning", reason="needs the prune extra (pip install 'edge-sdk[prune]')")

from edge_sdk.converters.prune import PruneSpec, count_macs, prune, prune_record  # noqa: E402

nn = torch.nn
X = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32))


class ResCat(nn.Module):
    """A residual add (stem + block must keep equal channels) and a concat (fc sees both branches)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.b1 = nn.Conv2d(16, 16, 3, padding=1)
        self.b2 = nn.Conv2d(16, 16, 3, padding=1)
        self.side = nn.Conv2d(16, 8, 1)
        self.fc = nn.Linear(24, 10)

    def forward(self, x: Any) -> Any:
        y = torch.relu(self.bn(self.stem(x)))
        y = y + self.b2(torch.relu(self.b1(y)))
        z = torch.cat([y, self.side(y)], 1)
        return self.fc(z.mean((2, 3)))


@pytest.fixture(scope="module")
def rescat() -> Any:
    torch.manual_seed(3)
    return ResCat().eval()


def _out_channels(module: Any) -> dict[str, int]:
    return {n: m.weight.shape[0] for n, m in module.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def test_ratio_target_removes_that_share_of_channels_and_keeps_the_classifier(conv_module: Any) -> None:
    pruned, result = prune(conv_module, X, PruneSpec(ratio=0.5))
    before, after = _out_channels(conv_module), _out_channels(pruned)
    assert after == {"features.0": 4, "features.4": 8, "classifier": 10}
    assert before["classifier"] == after["classifier"] == 10
    assert pruned(X).shape == (1, 10)
    assert result.layers_touched == ["features.0", "features.4"]
    assert "final classifier" in result.skipped["classifier"]
    assert result.inputs_narrowed == ["classifier"]
    assert result.params_after < result.params_before
    assert result.macs_after == count_macs(pruned, (X,)) < result.macs_before


def test_mac_target_is_reached(rescat: Any) -> None:
    target = count_macs(rescat, (X,)) // 3
    pruned, result = prune(rescat, X, PruneSpec(macs=target))
    assert result.macs_after <= target
    assert result.macs_after > target // 4  # found by search, not by removing everything
    assert 0 < (result.ratio_used or 0) < 0.9
    assert pruned(X).shape == (1, 10)


def test_residual_and_concat_stay_consistent(rescat: Any) -> None:
    pruned, result = prune(rescat, X, {"ratio": 0.5})
    ch = _out_channels(pruned)
    # The residual add ties stem and b2 together; the concat feeds fc with both branches.
    assert ch["stem"] == ch["b2"] == 8
    assert pruned.fc.in_features == ch["stem"] + ch["side"]
    assert pruned.bn.num_features == ch["stem"]
    assert pruned(torch.cat([X, X])).shape == (2, 10)
    assert set(result.layers_touched) == {"stem", "b1", "b2", "side"}


def test_ignored_layers_are_untouched(rescat: Any) -> None:
    by_name, result = prune(rescat, X, PruneSpec(ratio=0.5, ignore=["side"]))
    by_module, _ = prune(rescat, X, PruneSpec(ratio=0.5, ignore=[rescat.side]))
    for pruned in (by_name, by_module):
        assert pruned.side.weight.shape[0] == 8
    assert result.skipped["side"] == "listed in ignore"
    assert "side" not in result.layers_touched
    with pytest.raises(BadInputError, match="not a submodule"):
        prune(rescat, X, PruneSpec(ratio=0.5, ignore=["nope"]))


def test_finetune_hook_runs_after_pruning_and_between_steps(conv_module: Any) -> None:
    seen: list[tuple[int, ...]] = []

    def finetune(m: Any) -> None:
        assert m is not conv_module
        seen.append(tuple(m.features[0].weight.shape))

    pruned, result = prune(conv_module, X, PruneSpec(ratio=0.5, steps=3), finetune=finetune)
    assert result.finetune_calls == len(seen) == 3
    assert seen[0][0] > seen[-1][0] == 4  # channels go down step by step
    assert not pruned.training


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_sparsity_reaches_target_and_masks_are_gone(conv_module: Any, scope: str) -> None:
    pruned, result = prune(conv_module, X, PruneSpec(method="sparsity", ratio=0.6, scope=scope))
    assert result.sparsity == pytest.approx(0.6, abs=0.01)
    if scope == "layer":
        assert all(v == pytest.approx(0.6, abs=0.02) for v in result.layer_sparsity.values())
    assert set(result.layer_sparsity) == {"features.0", "features.4", "classifier"}
    keys = pruned.state_dict().keys()
    assert not [k for k in keys if k.endswith(("_orig", "_mask"))]
    assert all(not m._forward_pre_hooks for m in pruned.modules())
    assert _out_channels(pruned) == _out_channels(conv_module)
    assert result.macs_after == result.macs_before
    json.dumps(prune_record(result))  # the manifest record is plain JSON


def test_users_module_is_not_modified(rescat: Any) -> None:
    before = {k: v.clone() for k, v in rescat.state_dict().items()}
    prune(rescat, X, PruneSpec(ratio=0.5))
    prune(rescat, X, PruneSpec(method="sparsity", ratio=0.5))
    after = rescat.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_bad_specs_are_refused(conv_module: Any) -> None:
    with pytest.raises(BadInputError, match="exactly one"):
        prune(conv_module, X, PruneSpec(ratio=0.5, macs=1000))
    with pytest.raises(BadInputError, match="between 0 and 1"):
        prune(conv_module, X, 1.5)
    with pytest.raises(BadInputError, match="unknown pruning key"):
        prune(conv_module, X, {"ratoi": 0.5})


def test_pruned_module_exports_to_onnx_fp32_and_int8(rescat: Any, tmp_path: Path) -> None:
    pytest.importorskip("onnxscript", reason="the torch ONNX exporter needs onnxscript (edge-sdk[torch])")
    pruned, _ = prune(rescat, X, PruneSpec(ratio=0.5))
    rng = np.random.default_rng(1)
    calib = [{"x": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)} for _ in range(8)]
    arts = edge_sdk.convert(
        pruned, ["onnx:fp32", "onnx:int8"], example_inputs=X, calibration=calib, out=tmp_path
    )
    expected = pruned(torch.from_numpy(calib[0]["x"])).detach().numpy()
    for art in arts:
        got = edge_sdk.load(art.path).run({"x": calib[0]["x"]})
        (out,) = got.values()
        tol = 1e-4 if art.precision == "fp32" else 0.1 * np.abs(expected).max()
        np.testing.assert_allclose(out, expected, atol=tol)


def test_convert_prune_option_records_pruning(rescat: Any, tmp_path: Path) -> None:
    if "prune" not in inspect.signature(edge_sdk.convert).parameters:
        pytest.skip("edge_sdk.convert has no prune= yet")
    pytest.importorskip("onnxscript", reason="the torch ONNX exporter needs onnxscript (edge-sdk[torch])")
    (art,) = edge_sdk.convert(rescat, "onnx:fp32", example_inputs=X, prune={"ratio": 0.5}, out=tmp_path)
    assert art.path is not None
    record = json.loads((art.path / "artifact.json").read_text())["recipe"]["pruning"]
    assert record["spec"]["ratio"] == 0.5 and record["macs_after"] < record["macs_before"]


def test_missing_torch_pruning_names_the_extra() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["torch_pruning"] = None  # as if the prune extra were not installed
        import torch
        from edge_sdk.converters.prune import prune
        from edge_sdk.errors import MissingExtraError
        m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten(), torch.nn.Linear(8 * 14 * 14, 2))
        x = torch.zeros(1, 3, 16, 16)
        prune(m, x, {"method": "sparsity", "ratio": 0.5})  # needs torch only
        try:
            prune(m, x, 0.5)
        except MissingExtraError as e:
            print("EXTRA", e.extra, e)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "EXTRA prune" in out.stdout and "pip install 'edge-sdk[prune]'" in out.stdout
