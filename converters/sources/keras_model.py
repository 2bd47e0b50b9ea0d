"""Keras and TensorFlow SavedModel sources (``keras`` extra): a ``keras.Model`` (Keras 3 or tf_keras), a
``.keras`` or ``.h5`` file, or a SavedModel directory, brought to ONNX with tf2onnx.

What works with TensorFlow 2.21, Keras 3 and tf2onnx 1.17 (checked when this was written):

- a Keras model (object or loaded file): ``tf2onnx.convert.from_keras`` with an input signature made from
  ``model.inputs``; the ONNX inputs and outputs keep the Keras names;
- a SavedModel: tf2onnx 1.17 has no ``from_saved_model`` in its Python API, and ``from_function`` refuses
  the loaded signature itself (a ``_WrapperFunction`` has no ``get_concrete_function``), so the
  ``serving_default`` signature is wrapped in a ``tf.function`` with the same input signature that returns
  its outputs under their signature names, and that is converted with ``from_function``.

Reference outputs for parity come from TensorFlow itself (the model called with ``training=False``, or
the signature). Keras layouts (NHWC) are kept: the ONNX model takes the same arrays the Keras model does.
TensorFlow is imported into the caller's process here (the user's model already lives there).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.converters.fd_redirect import fds_to
from edge_sdk.converters.graph.onnx_model import onnx_opset
from edge_sdk.converters.sources import SOURCES, Sample, Source
from edge_sdk.errors import BadInputError, ConversionError, MissingExtraError
from edge_sdk.manifest import sha256_file

log = logging.getLogger("edge_sdk.converters.keras")

FILE_SUFFIXES = (".keras", ".h5", ".hdf5")
SIGNATURE = "serving_default"
DEFAULT_OPSET = 17


def _tf() -> tuple[Any, Any]:
    """TensorFlow and tf2onnx, or a MissingExtraError naming the ``keras`` extra."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # only takes effect before TensorFlow's import
    try:
        if "tensorflow" in sys.modules:
            import tensorflow as tf
        else:
            with quiet():
                import tensorflow as tf
    except ImportError:
        raise MissingExtraError("tensorflow", "keras", "Converting a Keras or SavedModel source") from None
    try:
        import tf2onnx
    except ImportError:
        raise MissingExtraError("tf2onnx", "keras", "Converting a Keras or SavedModel source") from None
    return tf, tf2onnx


@contextlib.contextmanager
def _fds_to_file() -> Iterator[Any]:
    """Point fd 1 and 2 at a temporary file for the block (see ``fd_redirect``); what was written goes to
    the debug log."""
    with tempfile.TemporaryFile() as f:
        try:
            with fds_to(f):
                yield f
        finally:
            f.seek(0)
            text = f.read().decode(errors="replace")
            if text.strip():
                log.debug("TensorFlow output:\n%s", text)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Keep tf2onnx's and TensorFlow's prints, warnings and logs (C++ included) out of the user's output;
    they go to this module's debug log (shown with ``-v``)."""
    loggers = [logging.getLogger(n) for n in ("tf2onnx", "tensorflow", "absl")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with _fds_to_file(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def is_keras_model(obj: Any) -> bool:
    """Whether ``obj`` is a Keras 3 or tf_keras model (without importing either)."""
    for name in ("keras", "tf_keras"):
        mod = sys.modules.get(name)
        model_cls = getattr(mod, "Model", None)
        if model_cls is not None and isinstance(obj, model_cls):
            return True
    return False


def is_saved_model(path: Path) -> bool:
    return path.is_dir() and (path / "saved_model.pb").is_file()


def _dir_sha256(path: Path) -> str:
    """A fingerprint of a directory: every file's relative path and content, in path order."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def _weights_sha256(model: Any) -> str:
    h = hashlib.sha256(f"{type(model).__module__}.{type(model).__qualname__}".encode())
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def _load_file(path: Path) -> Any:
    _tf()
    import keras

    try:
        with quiet():
            return keras.saving.load_model(str(path), compile=False)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise BadInputError(
            f"{path}: not a Keras model file Keras can read ({type(e).__name__}: {first[:200]})"
        ) from None


def _signature(model: Any, dynamic_batch: bool) -> list[Any]:
    """One ``tf.TensorSpec`` per model input, named as Keras names it; a free batch dim becomes 1 unless
    ``dynamic_batch``, as the torch source does (TFLite and static quantisers want fixed shapes)."""
    tf, _ = _tf()
    if not getattr(model, "inputs", None):
        raise BadInputError(
            f"{type(model).__name__} has no defined inputs (a subclassed model never called); use a "
            f"functional or Sequential model with keras.Input, or call it once on an example"
        )
    return [
        _tensor_spec(tf, t.shape, t.dtype, str(t.name).split(":")[0], dynamic_batch) for t in model.inputs
    ]


def _tensor_spec(tf: Any, shape: Any, dtype: Any, name: str, dynamic_batch: bool) -> Any:
    """A ``tf.TensorSpec``; a free batch dim becomes 1 unless ``dynamic_batch``."""
    shape = list(shape)
    if shape and shape[0] is None and not dynamic_batch:
        shape[0] = 1
    return tf.TensorSpec(shape, dtype, name=name)


def _keras_to_onnx(model: Any, dynamic_batch: bool, opset: int) -> tuple[Any, list[str]]:
    """(ONNX model, input names) for a Keras model, with tf2onnx's ``from_keras``."""
    _, tf2onnx = _tf()
    spec = _signature(model, dynamic_batch)
    onnx_model = _tf2onnx(
        f"the Keras model {model.name!r}",
        lambda: tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset),
    )
    return onnx_model, [s.name for s in spec]


def _tf2onnx(what: str, convert: Callable[[], tuple[Any, Any]]) -> Any:
    """The ONNX model of a tf2onnx ``convert`` call, run quietly; its failure as a ConversionError."""
    try:
        with quiet():
            onnx_model, _ = convert()
    except Exception as e:
        raise ConversionError(
            f"tf2onnx could not convert {what}: {type(e).__name__}: {str(e).strip()[:300]}"
        ) from None
    return onnx_model


def _saved_model_to_onnx(
    path: Path, dynamic_batch: bool, opset: int
) -> tuple[Any, list[str], list[str], Any]:
    """(ONNX model, input names, output names, the signature function) for a SavedModel directory."""
    tf, tf2onnx = _tf()
    try:
        with quiet():
            loaded = tf.saved_model.load(str(path))
    except Exception as e:
        raise BadInputError(
            f"{path}: TensorFlow cannot load this SavedModel ({type(e).__name__}: {e})"
        ) from None
    if SIGNATURE not in loaded.signatures:
        raise BadInputError(
            f"{path}: the SavedModel has no '{SIGNATURE}' signature (it has: "
            f"{', '.join(loaded.signatures) or 'none'}); export it with model.export(path)"
        )
    fn = loaded.signatures[SIGNATURE]
    inputs = fn.structured_input_signature[1]
    names, outputs = list(inputs), sorted(fn.structured_outputs)
    spec = [_tensor_spec(tf, s.shape, s.dtype, n, dynamic_batch) for n, s in inputs.items()]

    # Why the wrapper: tf2onnx needs a tf.function it can trace; the identities name the outputs.
    @tf.function(input_signature=spec)
    def wrapped(*args: Any) -> dict[str, Any]:
        out = fn(**dict(zip(names, args, strict=True)))
        return {k: tf.identity(out[k], name=k) for k in outputs}

    onnx_model = _tf2onnx(
        f"the SavedModel {path}",
        lambda: tf2onnx.convert.from_function(wrapped, input_signature=spec, opset=opset),
    )
    return onnx_model, names, outputs, (loaded, fn)


def _as_list(out: Any) -> list[Any]:
    if isinstance(out, dict):
        return list(out.values())
    return list(out) if isinstance(out, (tuple, list)) else [out]


class KerasSource:
    """Keras model objects, ``.keras``/``.h5`` files and SavedModel directories."""

    def claims(self, obj: Any) -> bool:
        if is_keras_model(obj):
            return True
        if isinstance(obj, (str, os.PathLike)) and not str(obj).startswith("zoo:"):
            path = Path(obj)
            return path.suffix.lower() in FILE_SUFFIXES or is_saved_model(path)
        return False

    def load(
        self,
        obj: Any,
        *,
        dynamic_batch: bool = False,
        opset: int | None = None,
        name: str | None = None,
        **options: Any,
    ) -> Source:
        torch_only = [k for k in ("example_inputs", "input_names", "output_names") if options.get(k)]
        if torch_only:
            raise BadInputError(
                f"{', '.join(torch_only)} apply to PyTorch sources; a Keras model keeps its own input and "
                f"output names and shapes"
            )
        tf, tf2onnx = _tf()
        opset = opset or DEFAULT_OPSET
        path: Path | None = None
        if is_keras_model(obj):
            model, kind = obj, "keras"
        else:
            path = Path(obj)
            if not path.exists():
                raise BadInputError(f"{path}: no such file or directory")
            model, kind = (None, "saved_model") if is_saved_model(path) else (_load_file(path), "keras")
        if kind == "keras":
            onnx_model, in_names = _keras_to_onnx(model, dynamic_batch, opset)
            native: dict[str, Any] = {"kind": "keras", "model": model}
            sha = sha256_file(path) if path else _weights_sha256(model)
            default_name = path.stem if path else str(model.name)
            package = sys.modules.get(type(model).__module__.split(".")[0])
            framework, version = "keras", str(getattr(package, "__version__", tf.__version__))
        else:
            assert path is not None
            onnx_model, in_names, sig_outputs, (loaded, _) = _saved_model_to_onnx(path, dynamic_batch, opset)
            native = {"kind": "saved_model", "path": str(path), "signature": SIGNATURE}
            sha = _dir_sha256(path)
            default_name = path.name
            framework, version = "tensorflow", tf.__version__
        out_names = [o.name for o in onnx_model.graph.output]

        def reference(samples: list[Sample]) -> list[dict[str, np.ndarray]]:
            results = []
            for s in samples:
                args = [np.asarray(s[n]) for n in in_names]
                if kind == "keras":
                    out = _as_list(model(args[0] if len(args) == 1 else args, training=False))
                else:
                    # Through ``loaded``: a signature whose loaded object was garbage-collected has lost
                    # its variables.
                    sig = loaded.signatures[SIGNATURE]
                    got = sig(**{n: tf.constant(a) for n, a in zip(in_names, args, strict=True)})
                    out = [got[k] for k in sig_outputs]
                results.append({n: np.asarray(t) for n, t in zip(out_names, out, strict=True)})
            return results

        return Source(
            name=name or default_name,
            model=onnx_model,
            framework=framework,
            framework_version=version,
            path=str(path) if path else None,
            sha256=sha,
            reference=reference,
            native=native,
            export={
                "exporter": "tf2onnx.convert.from_keras"
                if kind == "keras"
                else f"tf2onnx.convert.from_function({SIGNATURE} signature)",
                "tf2onnx": tf2onnx.__version__,
                "kind": kind,
                "dynamic_batch": dynamic_batch,
                "opset": onnx_opset(onnx_model),
                "input_names": in_names,
                "output_names": out_names,
            },
        )


SOURCES.register("keras")(KerasSource())
