"""ONNX files (and ``zoo:NAME`` models, which are ONNX files in the cache) as conversion sources."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import onnx

from edge_sdk.converters.onnx_model import load_onnx
from edge_sdk.converters.sources import SOURCES, Sample, Source
from edge_sdk.errors import BadInputError
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
        return [dict(zip(names, sess.run(names, s))) for s in samples]

    return run


class OnnxFileSource:
    def claims(self, obj: Any) -> bool:
        return isinstance(obj, (str, os.PathLike))

    def load(self, obj: Any, **options: Any) -> Source:
        name = None
        if isinstance(obj, str) and obj.startswith("zoo:"):
            from edge_sdk import zoo

            name = obj[4:]
            path = zoo.resolve(name)
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
            framework_version=f"opset {max(o.version for o in model.opset_import if o.domain in ('', 'ai.onnx'))}",
            path=str(path),
            sha256=sha256_file(path),
            reference=reference_runner(path),
            export={"onnx_version": onnx.__version__},
        )


SOURCES.register("onnx")(OnnxFileSource())
