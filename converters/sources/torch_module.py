"""PyTorch ``nn.Module`` sources, exported to ONNX with torch's dynamo exporter (``torch`` extra)."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import logging
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from edge_sdk.converters.graph.onnx_model import load_onnx, onnx_opset
from edge_sdk.converters.sources import SOURCES, Sample, Source
from edge_sdk.errors import BadInputError, ConversionError, MissingExtraError
from edge_sdk.manifest import owned_tempdir

log = logging.getLogger("edge_sdk.converters.torch")


def _state_sha256(module: Any) -> str:
    """A fingerprint of the module: its class and every parameter and buffer, in name order."""
    h = hashlib.sha256(f"{type(module).__module__}.{type(module).__qualname__}".encode())
    for key, t in sorted(module.state_dict().items()):
        h.update(key.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@contextlib.contextmanager
def eval_mode(module: Any) -> Iterator[None]:
    """Eval mode (dropout off, batch-norm statistics frozen) for as long as needed, then the user's
    module is left in the mode it was in."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def _input_names(module: Any, count: int, given: list[str] | None) -> list[str]:
    if given:
        if len(given) != count:
            raise BadInputError(f"input_names has {len(given)} names for {count} example inputs")
        return list(given)
    params = [
        p.name
        for p in inspect.signature(module.forward).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return params[:count] if len(params) >= count else [f"input_{i}" for i in range(count)]


class TorchModuleSource:
    def claims(self, obj: Any) -> bool:
        torch = sys.modules.get("torch")
        return torch is not None and isinstance(obj, torch.nn.Module)

    def load(
        self,
        module: Any,
        *,
        example_inputs: Any = None,
        input_names: list[str] | None = None,
        output_names: list[str] | None = None,
        dynamic_batch: bool = False,
        opset: int | None = None,
        name: str | None = None,
        **_: Any,
    ) -> Source:
        try:
            import torch
        except ImportError:  # pragma: no cover - claims() already saw torch
            raise MissingExtraError("torch", "torch", "Converting a PyTorch module") from None
        try:
            import onnxscript  # noqa: F401  (the dynamo exporter needs it)
        except ImportError:
            raise MissingExtraError("onnxscript", "torch", "Exporting a PyTorch module to ONNX") from None
        if example_inputs is None:
            raise BadInputError(
                "a PyTorch module needs example_inputs (a tensor, a tuple of tensors, or a dict of "
                "input name → tensor) to be exported"
            )
        if isinstance(example_inputs, dict):
            input_names = list(example_inputs)
            args = tuple(example_inputs.values())
        else:
            args = example_inputs if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
        args = tuple(torch.as_tensor(np.asarray(a)) if not isinstance(a, torch.Tensor) else a for a in args)
        names = _input_names(module, len(args), input_names)
        dynamic_shapes = {n: {0: torch.export.Dim("batch")} for n in names} if dynamic_batch else None
        export_args = args
        if dynamic_batch and any(a.shape[0] == 1 for a in args if a.ndim):
            # torch.export specialises a size-1 dim to the constant 1 on some modules (nn.GRU), so the
            # graph is traced with the example repeated to batch 2.
            export_args = tuple(torch.cat([a, a]) if a.ndim and a.shape[0] == 1 else a for a in args)
        with owned_tempdir("export") as tmp:
            path = tmp / "model.onnx"
            # The exporter prints progress and raises many warnings; keep both out of the user's output.
            noise = io.StringIO()
            torch_log = logging.getLogger("torch.onnx")
            level = torch_log.level
            torch_log.setLevel(logging.ERROR)
            try:
                with eval_mode(module), contextlib.redirect_stdout(noise), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    kwargs: dict[str, Any] = {
                        "dynamo": True,
                        "input_names": names,
                        "verbose": False,
                        "external_data": False,
                    }
                    if output_names:
                        kwargs["output_names"] = output_names
                    if dynamic_shapes:
                        kwargs["dynamic_shapes"] = dynamic_shapes
                    if opset:
                        kwargs["opset_version"] = opset
                    torch.onnx.export(module, export_args, str(path), **kwargs)
            except Exception as e:
                log.debug("exporter output:\n%s", noise.getvalue())
                raise ConversionError(
                    f"torch.onnx.export failed for {type(module).__name__}: {type(e).__name__}: "
                    f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}; check that forward() "
                    f"is traceable with these example inputs (torch.export.export(module, args) shows why)"
                ) from None
            finally:
                torch_log.setLevel(level)
            model = load_onnx(path)
        if dynamic_batch:
            dims = {i.name: i.type.tensor_type.shape.dim for i in model.graph.input}
            fixed = [n for n, d in dims.items() if d and not d[0].dim_param]
            if fixed:
                raise ConversionError(
                    f"dynamic_batch was asked for, but the exporter fixed the batch dim of {fixed}; the "
                    f"module's forward() treats the batch size as a constant (e.g. a reshape to a fixed size)"
                )
        out_names = [o.name for o in model.graph.output]
        examples = [{n: a.detach().cpu().numpy() for n, a in zip(names, args, strict=True)}]

        def reference(samples: list[Sample]) -> list[dict[str, np.ndarray]]:
            results = []
            with torch.no_grad(), eval_mode(module):
                for s in samples:
                    out = module(*(torch.from_numpy(np.asarray(s[n])) for n in names))
                    flat = list(out) if isinstance(out, (tuple, list)) else [out]
                    results.append(
                        {n: t.detach().cpu().numpy() for n, t in zip(out_names, flat, strict=True)}
                    )
            return results

        return Source(
            name=name or type(module).__name__.lower(),
            model=model,
            framework="torch",
            framework_version=torch.__version__,
            path=None,
            sha256=_state_sha256(module),
            reference=reference,
            examples=examples,
            native=(module, args),
            export={
                "exporter": "torch.onnx.export(dynamo=True)",
                "dynamic_batch": dynamic_batch,
                "opset": onnx_opset(model),
                "input_names": names,
                "output_names": out_names,
            },
        )


SOURCES.register("torch")(TorchModuleSource())
