"""ONNX files of the small recogniser, in the layouts the decoders read.

* CTC: ``model.onnx``, ``features`` float32 [N, T, D] -> ``log_probs`` [N, T, V] (``edge_sdk.asr.ctc``).
* Transducer: sherpa-onnx's stateless layout (``edge_sdk.asr.transducer.OnnxTransducer``):
  ``encoder.onnx`` (``x`` [N, T, D], ``x_lens`` [N] -> ``encoder_out`` [N, T, C], ``encoder_out_lens``),
  ``decoder.onnx`` (``y`` int64 [N, context] -> ``decoder_out`` [N, C]; metadata ``context_size`` and
  ``vocab_size``), ``joiner.onnx`` (``encoder_out`` [N, C], ``decoder_out`` [N, C] -> ``logit`` [N, V]).

Every file carries ``edge_sdk.asr.front_end`` (the front end's settings as JSON), ``edge_sdk.asr.kind``
and ``edge_sdk.asr.pad_seconds`` (see ``edge_sdk.asr.frames``). Each export is checked against torch
on onnxruntime before it is kept.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edge_sdk.asr.frames import META_FRONT_END, META_KIND, META_LOOKAHEAD, META_PAD, PAD_SECONDS
from edge_sdk.integrity import atomic_write
from edge_sdk.stages.kws import META_THRESHOLDS
from edge_sdk.train.asr_model import CONTEXT, CtcModel, TransducerModel

OPSET = 17


def _write(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    names: tuple[list[str], list[str]],
    axes: dict[str, dict[int, str]],
    meta: dict[str, str],
    doc: str,
) -> Path:
    import onnx

    module.eval()
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        raw = Path(tmp) / path.name
        torch.onnx.export(
            module,
            args,
            str(raw),
            input_names=names[0],
            output_names=names[1],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
        model = onnx.load(str(raw))
        del model.metadata_props[:]
        for k, v in meta.items():
            model.metadata_props.add(key=k, value=v)
        model.doc_string = doc
        onnx.checker.check_model(model)
        atomic_write(path, model.SerializeToString())
    _check(module, args, path, names[0])
    return path


def _check(module: nn.Module, args: tuple[torch.Tensor, ...], path: Path, inputs: list[str]) -> None:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    got = sess.run(None, {k: a.numpy() for k, a in zip(inputs, args, strict=True)})[0]
    with torch.no_grad():
        ref = module(*args)
    ref = (ref[0] if isinstance(ref, tuple) else ref).numpy()
    if not np.allclose(got, ref, atol=1e-4, rtol=1e-4):
        raise RuntimeError(f"{path.name}: ONNX differs from torch by {np.abs(got - ref).max():.2e}")


def _meta(cfg: Any, kind: str, lookahead: int = 3) -> dict[str, str]:
    return {
        META_FRONT_END: json.dumps(cfg.to_dict()),
        META_KIND: kind,
        META_PAD: str(PAD_SECONDS),
        META_LOOKAHEAD: str(lookahead),
    }


def export_ctc(model: CtcModel, cfg: Any, folder: Path, thresholds: dict[str, float] | None = None) -> Path:
    """``folder/model.onnx`` of a CTC model; ``thresholds`` (keyword → posterior) go into its metadata for
    the ``kws.ctc`` stage."""
    x = torch.randn(2, 30, cfg.dims()) * 3
    meta = _meta(cfg, "ctc", model.encoder.lookahead)
    if thresholds:
        meta[META_THRESHOLDS] = json.dumps(thresholds)
    return _write(
        model,
        (x,),
        folder / "model.onnx",
        (["features"], ["log_probs"]),
        {"features": {0: "N", 1: "T"}, "log_probs": {0: "N", 1: "T"}},
        meta,
        f"edge-sdk small CTC recogniser on the {cfg.kind} front end (edge_sdk.train.asr)",
    )


class _EncoderExport(nn.Module):
    def __init__(self, model: TransducerModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # a unidirectional GRU and padding after the end: frames past x_lens change nothing before it
        return self.model.encode(x), x_lens


class _DecoderExport(nn.Module):
    def __init__(self, model: TransducerModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.model.decode(y)[:, 0]


class _JoinerExport(nn.Module):
    def __init__(self, model: TransducerModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, encoder_out: torch.Tensor, decoder_out: torch.Tensor) -> torch.Tensor:
        return self.model.join(encoder_out, decoder_out)


def export_transducer(model: TransducerModel, cfg: Any, folder: Path) -> list[Path]:
    """``encoder.onnx``, ``decoder.onnx`` and ``joiner.onnx`` of a transducer in ``folder``."""
    model.eval()
    meta = _meta(cfg, "transducer")
    doc = f"edge-sdk small transducer on the {cfg.kind} front end (edge_sdk.train.asr)"
    x = torch.randn(2, 30, cfg.dims()) * 3
    width = model.enc_proj.out_features
    return [
        _write(
            _EncoderExport(model),
            (x, torch.tensor([30, 30], dtype=torch.int64)),
            folder / "encoder.onnx",
            (["x", "x_lens"], ["encoder_out", "encoder_out_lens"]),
            {"x": {0: "N", 1: "T"}, "x_lens": {0: "N"}, "encoder_out": {0: "N", 1: "T"}},
            meta,
            doc,
        ),
        _write(
            _DecoderExport(model),
            (torch.randint(0, model.vocab, (3, CONTEXT)),),
            folder / "decoder.onnx",
            (["y"], ["decoder_out"]),
            {"y": {0: "N"}, "decoder_out": {0: "N"}},
            {**meta, "context_size": str(CONTEXT), "vocab_size": str(model.vocab)},
            doc,
        ),
        _write(
            _JoinerExport(model),
            (torch.randn(3, width), torch.randn(3, width)),
            folder / "joiner.onnx",
            (["encoder_out", "decoder_out"], ["logit"]),
            {"encoder_out": {0: "N"}, "decoder_out": {0: "N"}, "logit": {0: "N"}},
            meta,
            doc,
        ),
    ]
