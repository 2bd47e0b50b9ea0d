"""The digits CNN both compression benches use (bench/compression.py, bench/pruning.py): scikit-learn's
``load_digits`` (1797 real handwritten 8×8 digits) upsampled and standardised on a seeded stratified
75/25 split, a 3-block conv net (Conv-BN-ReLU, BatchNorm), and its training loop.

Scripts in bench/ import it as a sibling (``import digits_cnn``): bench/ is on ``sys.path`` when one
runs as ``python bench/NAME.py``, and the tests put it there."""

from __future__ import annotations

from typing import Any

import numpy as np


def data(size: int = 32, seed: int = 0) -> tuple[Any, Any, Any, Any]:
    """Digits upsampled to ``size``×``size``, standardised on the training split:
    (x_train, y_train, x_test, y_test)."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = torch.from_numpy((d.images / 16.0).astype(np.float32))[:, None]
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    y = torch.from_numpy(d.target.astype(np.int64))
    idx_tr, idx_te = train_test_split(np.arange(len(y)), test_size=0.25, random_state=seed, stratify=d.target)
    mean, std = x[idx_tr].mean(), x[idx_tr].std()
    x = (x - mean) / std
    return x[idx_tr], y[idx_tr], x[idx_te], y[idx_te]


def model(widths: tuple[int, int, int] = (32, 64, 128)) -> Any:
    """Three Conv-BN-ReLU blocks of ``widths`` channels (max-pooled between), global average pool, a
    10-way linear head."""
    import torch.nn as nn

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    a, b, c = widths
    return nn.Sequential(
        *block(1, a),
        nn.MaxPool2d(2),
        *block(a, b),
        nn.MaxPool2d(2),
        *block(b, c),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(c, 10),
    )


def train(
    net: Any,
    x: Any,
    y: Any,
    epochs: int,
    lr: float,
    seed: int = 0,
    *,
    cosine: bool = True,
    recalibrate: bool = True,
) -> None:
    """Adam in batches of 64 (order from a generator seeded with ``seed``), with a cosine-decaying rate
    when ``cosine``; then, when ``recalibrate``, BatchNorm statistics re-estimated on the training
    inputs (with few batches the running averages lag the weights, and held-out accuracy jumps about).
    The net is left in eval mode."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * ((len(y) + 63) // 64)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1)) if cosine else None
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), 64):
            b = order[i : i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[b]), y[b]).backward()
            opt.step()
            if sched is not None:
                sched.step()
    if recalibrate:
        recalibrate_bn(net, x)
    net.eval()


def recalibrate_bn(net: Any, x: Any) -> None:
    """Re-estimate BatchNorm statistics on training inputs (no gradients): the cheapest repair after
    channels are removed, since each layer's input distribution has shifted."""
    import torch

    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a plain average over the batches below
    net.train()
    with torch.no_grad():
        for i in range(0, len(x), 64):
            net(x[i : i + 64])
    net.eval()


def accuracy(net: Any, x: Any, y: Any) -> float:
    import torch

    with torch.no_grad():
        return float((net.eval()(x).argmax(1) == y).float().mean())
