"""ONNX files (and ``zoo:NAME`` models, which are ONNX files in the cache) as conversion sources."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edge_sdk.converters.graph.onnx_model import load_onnx, onnx_opset
from edge_sdk.converters.sources import SOURCES, Sample, Source
from edge_sdk.errors import BadInputError, RunFailed
from edge_sdk.manifest import sha256_file


def reference_runner(model_path: Path):  # type: ignore[no-untyped-def]
    """fp32 reference outputs from onnxruntime on the CPU with default optimisations."""

    def run(samples: list[Sample]) -> list[dict]:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.log_severity_level = 3
        try:
            sess = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
        except Exception as e:
            from edge_sdk.runtimes.onnxruntime import explain_load_error

            raise explain_load_error(model_path, e) from None
        names = [o.name for o in sess.get_outputs()]
        results = []
        for s in samples:
            try:
                results.append(dict(zip(names, sess.run(names, s), strict=True)))
            except Exception as e:  # onnxruntime's own error types
                shapes = ", ".join(f"{k} {list(np.shape(v))}" for k, v in s.items())
                said = " ".join(str(e).split())
                raise RunFailed(
                    f"the source {model_path.name} failed to run on inputs {shapes}: {said}"
                ) from None
        return results

    return run


class OnnxFileSource:
    def claims(self, obj: Any) -> bool:
        return isinstance(obj, (str, os.PathLike))

    def load(self, obj: Any, **options: Any) -> Source:
        torch_only = [
            k
            for k in ("example_inputs", "dynamic_batch", "opset", "input_names", "output_names")
            if options.get(k)
        ]
        if torch_only:
            raise BadInputError(
                f"{', '.join(torch_only)} apply to PyTorch sources; an ONNX file keeps the names and dims "
                f"it was exported with"
            )
        name = options.get("name")
        shapes: dict[str, list[int]] = {}
        if isinstance(obj, str) and obj.startswith("zoo:"):
            from edge_sdk import zoo

            path = zoo.resolve(obj[4:])
            name = name or obj[4:]
            entry = zoo.catalog().get(obj[4:])
            shapes = entry.input_shapes() if entry else {}
        else:
            path = Path(obj)
            if not path.exists():
                raise BadInputError(f"{path}: no such file")
            if path.suffix != ".onnx":
                raise BadInputError(
                    f"{path}: not an ONNX file; sources are .onnx files, zoo:NAME, or (from Python) a "
                    f"torch.nn.Module with example_inputs"
                )
        model = load_onnx(path)
        return Source(
            name=name or path.stem,
            model=model,
            framework="onnx",
            framework_version=f"opset {onnx_opset(model)}",
            path=str(path),
            sha256=sha256_file(path),
            reference=reference_runner(path),
            export={"onnx_version": onnx.__version__},
            input_shapes=shapes,
        )


SOURCES.register("onnx")(OnnxFileSource())
