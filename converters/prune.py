"""Pruning of PyTorch modules before export: structured channel pruning (torch-pruning, ``prune`` extra) and
unstructured magnitude sparsity (``torch.nn.utils.prune``, torch only).

``prune(module, example_inputs, spec)`` works on a deep copy, so the user's module is never changed, and
returns a plain ``nn.Module`` (no masks, no hooks) that ``edge_sdk.convert`` exports like any other, with a
``PruneResult`` saying what was asked and what came out (parameters and MACs before/after, sparsity, the
layers touched and those skipped, with why). ``prune_record(result)`` is its manifest form.

MACs are counted by our own forward-hook counter over Conv/Linear layers (``count_macs``), for the
example inputs as given (batch included); other layers' arithmetic (BatchNorm, pooling, activations) is
not counted, as it is small and not what pruning removes.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np

from edge_sdk.errors import BadInputError, ConversionError, MissingExtraError

log = logging.getLogger("edge_sdk.converters.prune")

METHODS = ("channels", "sparsity")
MACS_COUNTER = "edge_sdk.converters.prune.count_macs: Conv/Linear multiply-accumulates for example_inputs"
# A MAC target is met by bisecting the channel ratio (up to MAX_RATIO) on copies, this many halvings.
MAC_SEARCH_STEPS = 10
MAX_RATIO = 0.9


@dataclass
class PruneSpec:
    """What to prune.

    ``method="channels"``: structured filter/channel pruning by ``ratio`` (fraction of each layer's
    output channels removed) or down to ``macs`` (iterate until at or below), in ``steps`` iterative steps
    (the fine-tune hook runs between them); ``scope="global"`` ranks channels across layers instead of
    per layer. ``method="sparsity"``: zero the ``ratio`` smallest-magnitude weights of every Conv/Linear
    layer (``scope="layer"``) or across all of them (``scope="global"``). ``ignore`` lists module names
    (or the modules themselves) to leave alone; the final classifier's outputs are always kept.
    """

    method: Literal["channels", "sparsity"] = "channels"
    ratio: float | None = None
    macs: int | None = None
    scope: Literal["layer", "global"] = "layer"
    ignore: Sequence[Any] = ()
    steps: int = 1
    round_to: int | None = None

    @classmethod
    def of(cls, value: PruneSpec | dict[str, Any] | float) -> PruneSpec:
        """A spec from a spec, a dict of its fields, or a bare ratio (channel pruning)."""
        if isinstance(value, PruneSpec):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls(ratio=float(value))
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(cls.__dataclass_fields__))
            if unknown:
                raise BadInputError(
                    f"unknown pruning key(s) {unknown}; known: {', '.join(cls.__dataclass_fields__)}"
                )
            return cls(**value)
        raise BadInputError(f"prune= takes a PruneSpec, a dict or a ratio, not {type(value).__name__}")

    def check(self) -> None:
        if self.method not in METHODS:
            raise BadInputError(f"pruning method '{self.method}' is not one of: {', '.join(METHODS)}")
        if self.scope not in ("layer", "global"):
            raise BadInputError(f"pruning scope '{self.scope}' is not 'layer' or 'global'")
        if (self.ratio is None) == (self.macs is None):
            raise BadInputError("give exactly one pruning target: ratio=... or macs=...")
        if self.ratio is not None and not 0.0 < self.ratio < 1.0:
            raise BadInputError(f"pruning ratio {self.ratio} must be between 0 and 1 (exclusive)")
        if self.macs is not None and self.method != "channels":
            raise BadInputError("a MAC target needs method='channels'; sparsity does not remove MACs")
        if self.steps < 1:
            raise BadInputError(f"pruning steps must be at least 1, not {self.steps}")


@dataclass
class PruneResult:
    """What pruning asked for and what it achieved (see ``prune_record`` for the manifest form)."""

    spec: dict[str, Any]
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    macs_counter: str = MACS_COUNTER
    sparsity: float = 0.0  # fraction of zero weights over the Conv/Linear layers
    layer_sparsity: dict[str, float] = field(default_factory=dict)
    layers_touched: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # layer → why it was left alone
    inputs_narrowed: list[str] = field(default_factory=list)
    ratio_used: float | None = None  # the channel ratio pruned (found by search for a MAC target)
    finetune_calls: int = 0
    tool: str = ""


def prune_record(result: PruneResult) -> dict[str, Any]:
    """The manifest's ``"pruning"`` entry: plain JSON types, ratios rounded."""
    rec = asdict(result)
    rec["params_ratio"] = round(result.params_after / max(result.params_before, 1), 4)
    rec["macs_ratio"] = round(result.macs_after / max(result.macs_before, 1), 4)
    rec["ratio_used"] = None if result.ratio_used is None else round(result.ratio_used, 4)
    rec["sparsity"] = round(result.sparsity, 4)
    rec["layer_sparsity"] = {k: round(v, 4) for k, v in result.layer_sparsity.items()}
    return rec


# -- helpers ------------------------------------------------------------------------------------------


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingExtraError("torch", "torch", "Pruning a PyTorch module") from None
    return torch


def _args(example_inputs: Any) -> tuple[Any, ...]:
    """Example inputs as a tuple of tensors (a tensor, array, tuple/list, or dict of name → value)."""
    torch = _torch()
    if example_inputs is None:
        raise BadInputError("pruning needs example_inputs (a tensor, tuple of tensors or dict) to trace")
    vals = example_inputs.values() if isinstance(example_inputs, dict) else example_inputs
    if not isinstance(vals, (tuple, list, type({}.values()))):
        vals = (vals,)
    return tuple(v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v)) for v in vals)


def _weighted(module: Any) -> dict[str, Any]:
    """Conv and Linear layers by qualified name: what pruning works on."""
    nn = _torch().nn
    kinds = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
    return {n: m for n, m in module.named_modules() if isinstance(m, kinds)}


def count_macs(module: Any, args: tuple[Any, ...]) -> int:
    """Multiply-accumulates of the Conv/Linear layers in one forward pass over ``args``."""
    torch = _torch()
    total = [0]

    def hook(m: Any, _inp: Any, out: Any) -> None:
        if isinstance(m, torch.nn.Linear):
            total[0] += out.numel() * m.in_features
        else:
            per_out = (m.in_channels // m.groups) * int(np.prod(m.kernel_size))
            total[0] += out.numel() * per_out

    handles = [m.register_forward_hook(hook) for m in _weighted(module).values()]
    try:
        with torch.no_grad():
            module(*args)
    finally:
        for h in handles:
            h.remove()
    return int(total[0])


def _params(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def _final_layers(module: Any, args: tuple[Any, ...]) -> list[str]:
    """The Conv/Linear layers whose output is a model output (the classifier); failing that, the last one
    run. Their output count is what the user's labels depend on, so it is never pruned."""
    torch = _torch()
    order: list[tuple[str, Any]] = []
    layers = _weighted(module)
    handles = [
        m.register_forward_hook(lambda _m, _i, out, n=n: order.append((n, out))) for n, m in layers.items()
    ]
    try:
        with torch.no_grad():
            out = module(*args)
    finally:
        for h in handles:
            h.remove()
    if isinstance(out, dict):
        out = list(out.values())
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    ids = {id(o) for o in outs}
    final = [n for n, t in order if id(t) in ids]
    return final or ([order[-1][0]] if order else [])


def _ignored_names(user: Any, copy_: Any, ignore: Sequence[Any]) -> list[str]:
    """Names (in the copy) of what the user listed by name or as modules of their own model."""
    by_id = {id(m): n for n, m in user.named_modules()}
    names = dict(copy_.named_modules())
    out = []
    for item in ignore:
        name = item if isinstance(item, str) else by_id.get(id(item))
        if name is None or name not in names:
            raise BadInputError(f"ignore lists {item!r:.60}, which is not a submodule of this model")
        out.append(name)
    return out


def _under(name: str, ignored: list[str]) -> bool:
    return any(name == i or name.startswith(f"{i}.") for i in ignored)


def _shapes(module: Any) -> dict[str, tuple[int, ...]]:
    return {n: tuple(m.weight.shape) for n, m in _weighted(module).items()}


# -- structured: channels -----------------------------------------------------------------------------


def _pruner(model: Any, args: tuple[Any, ...], spec: PruneSpec, keep: dict[str, str], ratio: float) -> Any:
    try:
        import torch_pruning as tp
    except ImportError:
        raise MissingExtraError("torch_pruning", "prune", "Structured (channel) pruning") from None
    modules = dict(model.named_modules())
    return tp.pruner.MetaPruner(
        model,
        args[0] if len(args) == 1 else args,
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=ratio,
        iterative_steps=spec.steps,
        global_pruning=spec.scope == "global",
        ignored_layers=[modules[n] for n in keep],
        round_to=spec.round_to,
    )


def _ratio_for_macs(model: Any, args: tuple[Any, ...], spec: PruneSpec, keep: dict[str, str]) -> float:
    """The smallest channel ratio whose one-shot pruning of a copy brings the MACs to the target or below
    (bisection; MACs fall as the ratio grows)."""
    assert spec.macs is not None

    def macs_at(ratio: float) -> int:
        trial = copy.deepcopy(model)
        _pruner(trial, args, replace(spec, steps=1), keep, ratio).step()
        return count_macs(trial.eval(), args)

    lo, hi = 0.0, MAX_RATIO
    least = macs_at(hi)
    if least > spec.macs:
        raise ConversionError(
            f"pruning cannot reach {spec.macs} MACs: {least} are left with {MAX_RATIO:.0%} of the prunable "
            f"channels removed; ask for more MACs or ignore fewer layers"
        )
    for _ in range(MAC_SEARCH_STEPS):
        mid = (lo + hi) / 2
        if macs_at(mid) <= spec.macs:
            hi = mid
        else:
            lo = mid
    return hi


def _prune_channels(
    model: Any,
    args: tuple[Any, ...],
    spec: PruneSpec,
    keep: dict[str, str],
    finetune: Callable[[Any], None] | None,
) -> tuple[float, int]:
    """Remove channels in place, in ``spec.steps`` steps; returns (the ratio used, fine-tune calls)."""
    ratio = spec.ratio if spec.macs is None else _ratio_for_macs(model, args, spec, keep)
    assert ratio is not None
    pruner = _pruner(model, args, spec, keep, ratio)
    calls = 0
    for step in range(1, spec.steps + 1):
        pruner.step()
        if finetune is not None and step < spec.steps:
            finetune(model)
            model.eval()
            calls += 1
    return ratio, calls


# -- unstructured: magnitude sparsity -----------------------------------------------------------------


def _sparsify(model: Any, spec: PruneSpec, keep: dict[str, str]) -> None:
    """Zero the smallest weights, then make it permanent (the masks and hooks removed)."""
    torch = _torch()
    from torch.nn.utils import prune as tprune

    layers = [(n, m) for n, m in _weighted(model).items() if n not in keep]
    if spec.scope == "global":
        tprune.global_unstructured(
            [(m, "weight") for _, m in layers], pruning_method=tprune.L1Unstructured, amount=spec.ratio
        )
    else:
        for _, m in layers:
            tprune.l1_unstructured(m, "weight", amount=spec.ratio)
    with torch.no_grad():
        for _, m in layers:
            tprune.remove(m, "weight")


# -- the public function ------------------------------------------------------------------------------


def prune(
    module: Any,
    example_inputs: Any,
    spec: PruneSpec | dict[str, Any] | float,
    finetune: Callable[[Any], None] | None = None,
) -> tuple[Any, PruneResult]:
    """Prune a copy of ``module`` as ``spec`` says (see ``PruneSpec``) and return it with a ``PruneResult``.

    ``finetune(module)``, if given, is called after pruning (and between iterative steps) to recover
    accuracy; it may train the module in place. The returned module is in eval mode and is a plain
    ``nn.Module``: export it with ``edge_sdk.convert(module, ..., example_inputs=...)``.
    """
    spec = PruneSpec.of(spec)
    spec.check()
    args = _args(example_inputs)
    model = copy.deepcopy(module).eval()
    layers = _weighted(model)
    if not layers:
        raise BadInputError(f"{type(module).__name__} has no Conv or Linear layers to prune")
    ignored = _ignored_names(module, model, spec.ignore)
    keep = {n: "listed in ignore" for n in layers if _under(n, ignored)}
    if spec.method == "channels":
        for n in _final_layers(model, args):
            keep.setdefault(n, "final classifier: its outputs are the model's outputs")
    shapes_before = _shapes(model)
    params_before, macs_before = _params(model), count_macs(model, args)
    if spec.macs is not None and macs_before <= spec.macs:
        raise BadInputError(f"the model has {macs_before} MACs already, at or below the target {spec.macs}")

    ratio, calls = spec.ratio, 0
    if spec.method == "channels":
        ratio, calls = _prune_channels(model, args, spec, keep, finetune)
        tool = f"torch-pruning {_version('torch_pruning')} MetaPruner, GroupMagnitudeImportance(p=2)"
    else:
        _sparsify(model, spec, keep)
        how = "global_unstructured" if spec.scope == "global" else "l1_unstructured"
        tool = f"torch.nn.utils.prune.{how} (L1 magnitude), masks removed"
    if finetune is not None:
        finetune(model)
        calls += 1
    model.eval()

    after = _weighted(model)
    shapes_after = _shapes(model)
    # A layer is touched when it lost output channels (or, for sparsity, weights); one whose inputs
    # narrowed only because the layer before it lost channels is listed under inputs_narrowed.
    touched = [n for n in after if shapes_after[n][0] != shapes_before[n][0]]
    narrowed = [n for n in after if n not in touched and shapes_after[n] != shapes_before[n]]
    zeros = {n: float((m.weight == 0).sum()) / m.weight.numel() for n, m in after.items()}
    if spec.method == "sparsity":
        touched = [n for n in after if n not in keep]
    skipped = dict(keep)
    for n in after:
        if n not in touched and n not in skipped:
            skipped[n] = "kept whole: coupled to a kept layer, or too few channels to remove any"
    total = sum(m.weight.numel() for m in after.values())
    record = {**asdict(spec), "ignore": ignored}
    result = PruneResult(
        spec=record,
        params_before=params_before,
        params_after=_params(model),
        macs_before=macs_before,
        macs_after=count_macs(model, args),
        sparsity=sum(zeros[n] * after[n].weight.numel() for n in after) / max(total, 1),
        layer_sparsity=zeros if spec.method == "sparsity" else {},
        layers_touched=touched,
        skipped=skipped,
        inputs_narrowed=narrowed,
        ratio_used=ratio,
        finetune_calls=calls,
        tool=tool,
    )
    return model, result


def _version(module: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(module.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        return "?"
