"""Calibration and evaluation data: whatever the user gives, turned into a list of checked input dicts.

Accepted forms:

* an iterable of dicts ``{input name: array}`` (one dict per sample), or of bare arrays for a
  single-input model;
* a ``.npz`` file (or a dict) with one array per input name, samples along the first axis (an array
  of the input's own rank is split along its batch axis instead);
* a folder of ``.npy`` files (single-input models; each file as above) or of ``.npz`` files (one
  sample each, keys are input names).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.errors import BadInputError
from edge_sdk.manifest import TensorSpec
from edge_sdk.runtimes.arrays import MAX_ARRAY_BYTES, read_npy, read_npz
from edge_sdk.runtimes.session import check_feeds

Sample = dict[str, np.ndarray]
CalibrationData = str | os.PathLike[str] | Iterable[Any]

HOW_TO_GIVE = (
    "give calibration data: in Python calibration=[{input name: array}, ...]; on the command line "
    "--calib PATH with a folder of .npy files (one sample each, single-input models), a folder of "
    ".npz files, or one .npz holding an array per input with samples along the first axis"
)


def _split(name: str, arr: np.ndarray, spec: TensorSpec, origin: str) -> list[np.ndarray]:
    """Samples held in one array: along a leading sample axis, or along the batch axis."""
    rank = len(spec.shape)
    if arr.ndim == rank + 1:
        return list(arr)
    if arr.ndim == rank and rank > 0 and not isinstance(spec.shape[0], int):
        return [arr[i : i + 1] for i in range(arr.shape[0])]
    if arr.ndim == rank:
        return [arr]
    raise BadInputError(
        f"{origin}: array for input '{name}' has shape {list(arr.shape)}; expected {spec.describe()} "
        f"or a stack of those"
    )


def _from_stacks(arrays: Mapping[str, Any], specs: list[TensorSpec], origin: str) -> list[Sample]:
    """Samples from one array per input (an .npz, or a dict), stacked along the first axis."""
    names = [s.name for s in specs]
    if sorted(arrays) != sorted(names):
        raise BadInputError(f"{origin}: holds arrays {sorted(arrays)}, but the model's inputs are {names}")
    per_input = {s.name: _split(s.name, np.asarray(arrays[s.name]), s, origin) for s in specs}
    counts = {n: len(v) for n, v in per_input.items()}
    if len(set(counts.values())) != 1:
        raise BadInputError(f"{origin}: inputs hold different sample counts {counts}")
    n = next(iter(counts.values()))
    return [{name: per_input[name][i] for name in names} for i in range(n)]


def _from_npz(path: Path, specs: list[TensorSpec]) -> list[Sample]:
    return _from_stacks(read_npz(path), specs, str(path))


def _from_dir(path: Path, specs: list[TensorSpec]) -> list[Sample]:
    npz = sorted(path.glob("*.npz"))
    npy = sorted(path.glob("*.npy"))
    if npz:
        return [s for f in npz for s in _from_npz(f, specs)]
    if not npy:
        raise BadInputError(f"{path}: holds no .npy or .npz files; {HOW_TO_GIVE}")
    if len(specs) != 1:
        raise BadInputError(
            f"{path}: a folder of .npy files serves single-input models; this one has inputs "
            f"{[s.name for s in specs]}: use .npz files keyed by input name"
        )
    spec = specs[0]
    return [{spec.name: a} for f in npy for a in _split(spec.name, read_npy(f), spec, str(f))]


def load_samples(
    data: CalibrationData | None, specs: list[TensorSpec], what: str = "calibration"
) -> list[Sample] | None:
    """Turn ``data`` into a list of input dicts, each checked against the model's ``specs``."""
    if data is None:
        return None
    samples: list[dict[str, Any]]
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.exists():
            raise BadInputError(f"{what} data {path}: no such file or directory")
        if path.is_dir():
            samples = _from_dir(path, specs)
        elif path.suffix == ".npz":
            samples = _from_npz(path, specs)
        elif path.suffix == ".npy" and len(specs) == 1:
            samples = [{specs[0].name: a} for a in _split(specs[0].name, read_npy(path), specs[0], str(path))]
        else:
            raise BadInputError(f"{what} data {path}: not a folder, .npz or .npy; {HOW_TO_GIVE}")
    elif isinstance(data, Mapping):
        samples = _from_stacks(data, specs, f"{what} data")
    else:
        samples = []
        for item in data:
            if isinstance(item, Mapping):
                samples.append(dict(item))
            elif len(specs) == 1:
                samples.append({specs[0].name: item})
            else:
                raise BadInputError(
                    f"{what} data holds a {type(item).__name__}; this model has several inputs "
                    f"{[s.name for s in specs]}, so each sample must be a dict of input name → array"
                )
    if not samples:
        raise BadInputError(f"{what} data is empty; {HOW_TO_GIVE}")
    checked = []
    for i, s in enumerate(samples):
        try:
            checked.append(check_feeds(specs, s))
        except BadInputError as e:
            raise BadInputError(f"{what} sample {i} does not match the model: {e}") from None
    return checked


def random_samples(specs: list[TensorSpec], count: int, seed: int = 0, free: int = 1) -> list[Sample]:
    """Normal-distributed inputs for float-only models, for a parity check when the user gave no data:
    a symbolic first dim (the batch) is 1, other symbolic dims are ``free``. Integer inputs cannot be
    guessed, so those need real data."""
    rng = np.random.default_rng(seed)
    for s in specs:
        if not np.issubdtype(np.dtype(s.dtype), np.floating):
            raise BadInputError(
                f"the parity check needs inputs, and input '{s.name}' is {s.dtype}, which cannot be "
                f"made up; pass evaluation or calibration data (--parity-data / --calib)"
            )
    shapes = {
        s.name: [
            d if isinstance(d, int) and d > 0 else (1 if i == 0 else free) for i, d in enumerate(s.shape)
        ]
        for s in specs
    }
    for s in specs:
        size = int(np.prod(shapes[s.name], dtype=np.float64)) * np.dtype(s.dtype).itemsize
        if size > MAX_ARRAY_BYTES:
            raise BadInputError(
                f"input '{s.name}' declares shape {shapes[s.name]} ({size / 2**30:.3g} GiB), too large to "
                "make parity inputs for; fix its shape (--shape) or pass parity data (--parity-data)"
            )
    return [
        {s.name: rng.standard_normal(shapes[s.name]).astype(s.dtype) for s in specs} for _ in range(count)
    ]
