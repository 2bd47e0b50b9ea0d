"""Recipe: train, export and check our own small speech denoiser (the zoo's ``tiny-denoiser``).

The model sees exactly what NSNet2 sees: ``edge_sdk.audio.features.log_power(stft(x))`` (20 ms
square-root Hann window, 10 ms hop, 161 bins), and returns a suppression gain in [0, 1] per bin and
frame. It is causal and frame-by-frame: a per-bin affine normalisation (fixed from training data, folded
into the first layer at export), Linear 161→64 + ReLU, a 2-layer GRU of 80 units, Linear 80→161 +
Sigmoid; about 97 000 parameters. The GRU state is the ONNX ``state_in_0``/``state_out_0`` pair.

Training data (see ``speech_data`` and ``noise_data``): espeak-ng/flite sentences and the training
split of the Asterisk prompts, cut into 3 s clips from streams with pauses, mixed on the fly with
generated noise at an SNR uniform in [-5, 20] dB and a random level. 10 % of the utterances (by name)
are the validation set. The loss is MSE on power-law compressed (|S|^0.3) magnitudes and compressed
complex spectra, plus a waveform SI-SDR term through an istft identical to ``audio_features.istft``.

    python -m edge_sdk.train.tiny_denoiser --out runs/tiny --steps 6000

writes ``ckpt.pt`` (resumable), ``best.pt``, ``train_log.jsonl`` and ``model.onnx`` into ``--out``.
Fine-tuning starts from another run's weights with a fresh optimizer and schedule; ``--typing P`` draws the
noise of a share P of clips from click trains over a stationary floor (``noise_data.typing_floor``, also
scored as a second validation set) and ``--w-over`` weights a loss on residual noise:

    python -m edge_sdk.train.tiny_denoiser --out runs/ft --init runs/tiny/best.pt --steps 1200 \
        --lr 4e-4 --typing 0.5 --w-over 1.0

``--init`` also takes an exported ``model.onnx`` (such as the zoo's), ``--broad P`` draws the noise of a
share P of the other clips from the low-frequency kinds (``noise_data.BROAD_KINDS``), and
``--validate-only`` prints the starting weights' validation scores instead of training.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.audio.features import HOP, N_FFT, POWER_FLOOR, WIN, analysis_window, synthesis_window
from edge_sdk.audio.mix import rms
from edge_sdk.train import noise_data, speech_data

log = logging.getLogger("edge_sdk.train.tiny_denoiser")

BINS = N_FFT // 2 + 1
SR = speech_data.SAMPLE_RATE
DEFAULTS = {"proj": 64, "hidden": 80, "layers": 2}
#: Recorded keyboards (``noise_data.KBSIM_PROFILES``) kept for validation, never trained on.
VAL_KEYBOARDS = ("holy-panda", "mx-brown")


#: Seconds of each independent noise draw in the bank. Each draw fixes a spectrum (a slope, a cut-off, a
#: fan's blades), so short draws give many of them: four draws per kind taught four spectra per kind.
NOISE_PIECE_SECONDS = 2.5


def build_data(
    n_tts: int,
    seed: int = 0,
    noise_seconds: float = 150.0,
    wide_languages: tuple[str, ...] = (),
    wide_minutes: float | None = None,
) -> dict[str, np.ndarray]:
    """Speech streams and noise banks for training and validation, cached as one ``.npz``.

    ``train_tts``/``train_real``/``train_wide`` and their ``val_`` twins are utterances joined with random
    pauses (0.05-0.6 s): synthesised, the 8 kHz Asterisk prompts, and the G.722 Asterisk prompts of
    ``wide_languages`` (at most ``wide_minutes`` each). ``noise_train/<kind>`` and ``noise_val/<kind>`` are
    independent noise draws, babble made from the training (resp. validation) utterances. The validation
    utterances are 10 % by name."""
    wide = (tuple(wide_languages), wide_minutes) if wide_languages else ()
    # v3: the bank gained the low-frequency kinds (sloped, rumble, fan, traffic); v4: howl and buffeting,
    # and a fresh draw every NOISE_PIECE_SECONDS instead of four draws per kind
    key = hashlib.sha1(f"v4|{n_tts}|{seed}|{noise_seconds}{'|' + repr(wide) if wide else ''}".encode())
    path = speech_data.cache_dir() / f"denoiser-data-{key.hexdigest()[:12]}.npz"
    if path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    rng = np.random.default_rng(seed)
    utts = speech_data.synthetic_corpus(n_tts, seed=seed) + speech_data.asterisk_prompts("train")
    if wide_languages:
        utts += speech_data.asterisk_wideband("train", tuple(wide_languages), wide_minutes, seed=seed)
    kinds = {"asterisk": "real", "asterisk-g722": "wide"}
    names = [f"{part}_{kind}" for part in ("train", "val") for kind in ("tts", "real", "wide")]
    groups: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for u in utts:
        part = "val" if speech_data.split_of(u.name + "#val", 0.1) == "test" else "train"
        groups[f"{part}_{kinds.get(u.source, 'tts')}"].append(
            u.audio / max(float(np.max(np.abs(u.audio))), 1e-4) * 0.5
        )
    data: dict[str, np.ndarray] = {}
    for name, items in groups.items():
        pieces = []
        for a in items:
            pieces += [a, np.zeros(int(rng.uniform(0.05, 0.6) * SR), np.float32)]
        data[name] = np.concatenate(pieces or [np.zeros(0)]).astype(np.float32)
    for part in ("train", "val"):
        voices = groups[f"{part}_tts"] + groups[f"{part}_real"] + groups[f"{part}_wide"]
        seconds = noise_seconds if part == "train" else noise_seconds / 4
        draws = max(1, round(seconds / NOISE_PIECE_SECONDS))
        bank = noise_data.noise_bank(seconds, rng, voices, pieces=draws)
        data.update({f"noise_{part}/{k}": v for k, v in bank.items()})
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.npz")  # atomic: two runs may build it at once
    np.savez(tmp, **data)  # type: ignore[arg-type]  # numpy stubs type the first kwarg as allow_pickle
    os.replace(tmp, path)
    return data


def make_batch(
    data: dict[str, np.ndarray],
    part: str,
    batch: int,
    clip: int,
    rng: np.random.Generator,
    p_real: float = 0.4,
    p_boost: float = 0.0,
    p_wide: float = 0.0,
    p_broad: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``batch`` random (noisy, clean) clips of ``clip`` samples from ``part`` ("train" or "val"): the
    speech from the wideband prompts with probability ``p_wide``, the 8 kHz prompts with ``p_real``, else
    synthesised; SNR uniform in [-5, 20] dB, sometimes a second noise, speech level -45 to -12 dBFS, no
    clipping. With
    ``p_boost`` > 0 the first noise is, with that probability, drawn from ``data["boost_<part>"]`` (see
    ``--typing``) instead of the bank's kinds; otherwise, with probability ``p_broad``, from the
    low-frequency kinds (``noise_data.BROAD_KINDS``, see ``--broad``)."""
    kinds = sorted(k for k in data if k.startswith(f"noise_{part}/"))
    broad = [k for k in kinds if k.split("/", 1)[1] in noise_data.BROAD_KINDS]
    noisy, clean = np.zeros((batch, clip), np.float32), np.zeros((batch, clip), np.float32)
    for i in range(batch):
        r = rng.random()  # one draw whatever the shares, so p_wide=0 draws what it always did
        source = "wide" if r < p_wide else "real" if r < p_wide + p_real else "tts"
        stream = data.get(f"{part}_{source}", np.zeros(0, np.float32))
        if len(stream) <= clip:  # tiny data sets (tests): another stream, the training data, or repeat
            names = (f"{part}_wide", f"{part}_real", f"{part}_tts", "train_tts")
            stream = max((data[k] for k in names if k in data), key=len)
            stream = np.tile(stream, -(-(clip + 1) // len(stream)))
        s = int(rng.integers(len(stream) - clip))
        speech = stream[s : s + clip]
        noise = np.zeros(clip, np.float32)
        boosted = p_boost > 0 and rng.random() < p_boost
        # drawn only when asked for, so p_broad=0 draws what it always did
        from_broad = p_broad > 0 and not boosted and rng.random() < p_broad
        for j in range(1 if rng.random() < 0.7 else 2):
            if boosted and j == 0:
                bank = data[f"boost_{part}"]
            elif from_broad and j == 0:
                bank = data[broad[int(rng.integers(len(broad)))]]
            else:
                bank = data[kinds[int(rng.integers(len(kinds)))]]
            t = int(rng.integers(len(bank) - clip))
            noise += bank[t : t + clip] * (1.0 if j == 0 else 10 ** (-rng.uniform(0, 10) / 20))
        snr = rng.uniform(-5, 20)
        noise *= rms(speech) / (rms(noise) * 10 ** (snr / 20) + 1e-9)
        gain = 10 ** (rng.uniform(-45, -12) / 20) / (rms(speech) + 1e-9)
        mix = (speech + noise) * gain
        gain *= min(1.0, 0.99 / (float(np.max(np.abs(mix))) + 1e-9))
        noisy[i], clean[i] = (speech + noise) * gain, speech * gain
    return noisy, clean


def _torch() -> Any:
    import torch

    return torch


def spectral_ops() -> tuple[Any, Any, Any]:
    """Torch ``stft``, ``istft`` and ``log_power`` with exactly the framing of ``edge_sdk.audio.features``
    (differentiable; batched over the first axis)."""
    torch = _torch()
    window = torch.from_numpy(analysis_window(WIN))
    synth = torch.from_numpy(synthesis_window(WIN, HOP))

    def stft(x: Any) -> Any:
        n_frames = -(-x.shape[-1] // HOP)
        pad = (WIN - HOP, n_frames * HOP - x.shape[-1])
        frames = torch.nn.functional.pad(x, pad).unfold(-1, WIN, HOP)[..., :n_frames, :]
        return torch.fft.rfft(frames * window, n=N_FFT)

    def istft(spec: Any) -> Any:
        frames = torch.fft.irfft(spec, n=N_FFT)[..., :WIN] * synth
        t = frames.shape[-2]
        out = torch.nn.functional.fold(
            frames.transpose(1, 2),
            output_size=(1, (t - 1) * HOP + WIN),
            kernel_size=(1, WIN),
            stride=(1, HOP),
        )
        return out[:, 0, 0, WIN - HOP :]

    def log_power(spec: Any) -> Any:
        return torch.log10(torch.clamp(spec.real**2 + spec.imag**2, min=POWER_FLOOR))

    return stft, istft, log_power


def make_model(mean: np.ndarray, std: np.ndarray, proj: int = 64, hidden: int = 80, layers: int = 2) -> Any:
    """The denoiser as a torch module: ``forward(features [B,T,161], state [layers,B,hidden])`` returns
    ``(gains [B,T,161], state)``; ``mean``/``std`` normalise the features (fixed buffers)."""
    torch = _torch()
    nn = torch.nn

    class TinyDenoiser(nn.Module):  # type: ignore[name-defined,misc]  # torch is imported lazily
        def __init__(self) -> None:
            super().__init__()
            self.layers, self.hidden, self.folded = layers, hidden, False
            self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
            self.register_buffer("inv_std", 1.0 / torch.as_tensor(std, dtype=torch.float32))
            self.inp = nn.Linear(BINS, proj)
            self.gru = nn.GRU(proj, hidden, num_layers=layers, batch_first=True)
            self.out = nn.Linear(hidden, BINS)

        def forward(self, features: Any, state: Any) -> tuple[Any, Any]:
            if not self.folded:
                features = (features - self.mean) * self.inv_std
            x = torch.relu(self.inp(features))
            y, state = self.gru(x, state)
            return torch.sigmoid(self.out(y)), state

        def fold_normalisation(self) -> None:
            """Bake the normalisation into ``inp`` (same outputs, one affine layer fewer at run time)."""
            with torch.no_grad():
                w = self.inp.weight * self.inv_std
                self.inp.bias -= w @ self.mean
                self.inp.weight.copy_(w)
            self.folded = True

    return TinyDenoiser()


def weights_from_onnx(path: Path, mean: np.ndarray, std: np.ndarray) -> tuple[dict, dict]:
    """Hyper-parameters and a torch ``state_dict`` for ``make_model(mean, std, **hp)`` that computes what
    an exported ``model.onnx`` computes: the folded normalisation is unfolded for the given ``mean`` and
    ``std``, and ONNX's GRU gate order (z, r, h) is put back into torch's (r, z, n). So a fine-tune can start
    from the shipped model when its checkpoint is not at hand."""
    import onnx
    from onnx import numpy_helper

    from edge_sdk.errors import BadInputError

    graph = onnx.load(str(path)).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    matmuls = [n for n in graph.node if n.op_type == "MatMul"]
    grus = [n for n in graph.node if n.op_type == "GRU"]
    adds = {n.output[0]: n for n in graph.node if n.op_type == "Add"}
    if len(matmuls) != 2 or not grus or any(len(g.input) < 4 for g in grus):
        raise BadInputError(f"{path}: not a tiny-denoiser export (expected 2 MatMul and GRU nodes)")

    def bias(matmul: Any) -> np.ndarray:
        add = next(a for a in adds.values() if matmul.output[0] in a.input)
        return init[next(i for i in add.input if i in init)]

    def torch_gates(w: np.ndarray) -> np.ndarray:
        z, r, h = np.split(w, 3, axis=0)
        return np.concatenate([r, z, h])

    torch = _torch()
    w_in, w_out = init[matmuls[0].input[1]].T, init[matmuls[1].input[1]].T
    hidden = init[grus[0].input[2]].shape[-1]
    state = {
        "mean": mean,
        "inv_std": 1.0 / std,
        "inp.weight": w_in * std,  # folded: W' = W / std, b' = b - W' @ mean
        "inp.bias": bias(matmuls[0]) + w_in @ mean,
        "out.weight": w_out,
        "out.bias": bias(matmuls[1]),
    }
    for k, g in enumerate(grus):
        b = init[g.input[3]][0]
        state[f"gru.weight_ih_l{k}"] = torch_gates(init[g.input[1]][0])
        state[f"gru.weight_hh_l{k}"] = torch_gates(init[g.input[2]][0])
        state[f"gru.bias_ih_l{k}"] = torch_gates(b[: 3 * hidden])
        state[f"gru.bias_hh_l{k}"] = torch_gates(b[3 * hidden :])
    hp = {"proj": int(w_in.shape[0]), "hidden": int(hidden), "layers": len(grus)}
    return hp, {k: torch.from_numpy(np.array(v, np.float32)) for k, v in state.items()}


def n_params(model: Any) -> int:
    """Trainable parameters of a torch module."""
    return sum(p.numel() for p in model.parameters())


def loss_terms(
    model: Any, noisy: Any, clean: Any, ops: tuple[Any, Any, Any], w_sisdr: float, w_over: float = 0.0
) -> dict:
    """Loss of one batch: compressed magnitude MSE + compressed complex MSE + ``w_sisdr`` × (−SI-SDR)
    + ``w_over`` × MSE of the compressed magnitude only where the output exceeds the clean speech
    (residual noise, which PESQ punishes more than a little speech lost)."""
    torch = _torch()
    stft, istft, log_power = ops
    spec_n = stft(noisy)
    state = torch.zeros(model.layers, noisy.shape[0], model.hidden)
    gains, _ = model(log_power(spec_n), state)
    scale = 1.0 / (noisy.std(dim=1, keepdim=True) + 1e-6)  # level-independent loss
    est, ref = spec_n * gains * scale.unsqueeze(-1), stft(clean) * scale.unsqueeze(-1)
    mag_e, mag_r = (est.abs() + 1e-8) ** 0.3, (ref.abs() + 1e-8) ** 0.3
    l_mag = torch.mean((mag_e - mag_r) ** 2)
    l_cplx = torch.mean(torch.abs(est / (est.abs() + 1e-8) * mag_e - ref / (ref.abs() + 1e-8) * mag_r) ** 2)
    wave = istft(est)[:, : clean.shape[1]]
    sisdr = si_sdr_torch(wave, clean * scale)
    total = 0.7 * l_mag + 0.3 * l_cplx - w_sisdr * sisdr.mean()
    terms = {"loss": total, "mag": l_mag, "cplx": l_cplx, "sisdr": sisdr.mean()}
    if w_over > 0:
        terms["over"] = torch.mean(torch.relu(mag_e - mag_r) ** 2)
        terms["loss"] = total + w_over * terms["over"]
    return terms


def si_sdr_torch(est: Any, ref: Any) -> Any:
    """Per-example SI-SDR in dB (zero-meaned), as ``audio_mix.si_sdr``."""
    torch = _torch()
    est, ref = est - est.mean(1, keepdim=True), ref - ref.mean(1, keepdim=True)
    target = (est * ref).sum(1, keepdim=True) / ((ref * ref).sum(1, keepdim=True) + 1e-9) * ref
    return 10 * torch.log10(((target**2).sum(1) + 1e-9) / (((est - target) ** 2).sum(1) + 1e-9))


def feature_stats(data: dict[str, np.ndarray], rng: np.random.Generator, ops: tuple) -> tuple:
    """Per-bin mean and std of the log-power features over 256 training mixtures."""
    torch = _torch()
    noisy, _ = make_batch(data, "train", 256, 3 * SR, rng)
    feats = ops[2](ops[0](torch.from_numpy(noisy))).reshape(-1, BINS)
    return feats.mean(0).numpy(), feats.std(0).clamp(min=1e-3).numpy()


def train(args: argparse.Namespace) -> Path:
    """Train (resuming from ``<out>/ckpt.pt`` when present), keep the best validation model in
    ``best.pt``, then export ``model.onnx``. Returns the ONNX path."""
    torch = _torch()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ops = spectral_ops()
    t0 = time.time()
    languages = tuple(x for x in args.wide_languages.split(",") if x) if args.wide > 0 else ()
    data = build_data(args.tts, seed=args.seed, wide_languages=languages, wide_minutes=args.wide_minutes)
    log.info(
        "data ready in %.0f s: %s",
        time.time() - t0,
        {k: len(v) / SR for k, v in data.items() if "/" not in k},
    )
    if args.typing > 0:  # a bank of click trains over stationary floors, drawn apart from the cached data
        trng = np.random.default_rng(args.seed + 7)
        keyboards: dict[str, list[noise_data.Keyboard]] = {"train": [], "val": []}
        if args.keys > 0:  # recorded keyboards; validation hears keyboards training never does
            for kb in noise_data.recorded_keyboards():
                keyboards["val" if kb.name in VAL_KEYBOARDS else "train"].append(kb)
        count = 16 if args.keys > 0 else 8  # (8 and no extra draws: --keys 0 gives the bank it always did)
        for part, secs in (("train", 120.0), ("val", 30.0)):
            n = int(secs * SR) // count
            pieces = [
                noise_data.typing_floor(
                    n, trng, keyboards[part] if args.keys and trng.random() < args.keys else None
                )
                for _ in range(count)
            ]
            data[f"boost_{part}"] = np.concatenate(pieces).astype(np.float32)
    rng = np.random.default_rng(args.seed + 1)
    val = [
        make_batch(data, "val", 32, 4 * SR, np.random.default_rng(1000 + i), args.real, p_wide=args.wide)
        for i in range(args.val_batches)
    ]
    val_typing = [
        make_batch(data, "val", 32, 4 * SR, np.random.default_rng(2000 + i), args.real, 1.0, args.wide)
        for i in range(args.val_batches if args.typing > 0 else 0)
    ]
    ckpt_path = out / "ckpt.pt"
    hp = {k: getattr(args, k) for k in DEFAULTS}
    if not ckpt_path.exists() and args.init:  # fine-tune: weights only; fresh optimizer, schedule, best
        if str(args.init).endswith(".onnx"):  # an exported model: normalisation from this run's data
            mean, std = feature_stats(data, np.random.default_rng(args.seed + 2), ops)
            init_hp, weights = weights_from_onnx(Path(args.init), mean, std)
            init = {"mean": mean, "std": std, "hp": init_hp, "model": weights, "step": "exported"}
        else:
            init = torch.load(args.init, weights_only=False)
        model = make_model(init["mean"], init["std"], **init["hp"])
        model.load_state_dict(init["model"])
        step, best = 0, -1e9
        ckpt = {"mean": init["mean"], "std": init["std"], "hp": init["hp"], "init": str(args.init)}
        log.info("fine-tuning from %s (its step %s)", args.init, init.get("step"))
    elif ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=False)
        model = make_model(ckpt["mean"], ckpt["std"], **ckpt["hp"])
        model.load_state_dict(ckpt["model"])
        rng.bit_generator.state = ckpt["rng"]
        step, best = ckpt["step"], ckpt["best"]
    else:
        mean, std = feature_stats(data, np.random.default_rng(args.seed + 2), ops)
        model, step, best = make_model(mean, std, **hp), 0, -1e9
        ckpt = {"mean": mean, "std": std, "hp": hp}
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    if "opt" in ckpt:
        opt.load_state_dict(ckpt["opt"])
    if args.validate_only:  # score the starting weights on this run's validation sets, train nothing
        scores = {"val_sisdr_gain": validate(model, val, ops)}
        if val_typing:
            scores["val_typing_gain"] = validate(model, val_typing, ops)
        print(json.dumps({"weights": str(args.init or ckpt_path), **scores}))
        return ckpt_path
    log.info("model: %d parameters; starting at step %d of %d", n_params(model), step, args.steps)
    running: dict[str, float] = {}
    tick = time.time()
    while step < args.steps:
        lr = (
            args.lr
            * min(1.0, (step + 1) / 200)
            * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * step / args.steps)))
        )
        for g in opt.param_groups:
            g["lr"] = lr
        noisy, clean = make_batch(
            data, "train", args.batch, int(args.clip * SR), rng, args.real, args.typing, args.wide, args.broad
        )
        terms = loss_terms(
            model, torch.from_numpy(noisy), torch.from_numpy(clean), ops, args.w_sisdr, args.w_over
        )
        opt.zero_grad()
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        for k, v in terms.items():
            running[k] = running.get(k, 0.0) + float(v.detach())
        if step % args.log_every == 0 or step == args.steps:
            n = args.log_every if step % args.log_every == 0 else step % args.log_every
            rec: dict[str, Any] = {"step": step, "lr": lr, **{k: v / n for k, v in running.items()}}
            rec["s_per_step"] = (time.time() - tick) / n
            running, tick = {}, time.time()
            if step % args.eval_every == 0 or step == args.steps:
                rec["val_sisdr_gain"] = score = validate(model, val, ops)
                if val_typing:  # fine-tuning on transients: keep the best of both sets together
                    rec["val_typing_gain"] = validate(model, val_typing, ops)
                    score = (score + rec["val_typing_gain"]) / 2
                ckpt.update(
                    model=model.state_dict(), opt=opt.state_dict(), rng=rng.bit_generator.state, step=step
                )
                if score > best:
                    best = score
                    torch.save({**ckpt, "best": best, "opt": None}, out / "best.tmp")
                    (out / "best.tmp").replace(out / "best.pt")
                ckpt["best"] = best
                torch.save(ckpt, out / "ckpt.tmp")
                (out / "ckpt.tmp").replace(ckpt_path)
            log.info(json.dumps(rec))
            with open(out / "train_log.jsonl", "a") as fh:
                fh.write(json.dumps(rec) + "\n")
    return export_checkpoint(out / "best.pt" if (out / "best.pt").exists() else ckpt_path, out / "model.onnx")


def validate(model: Any, val: list[tuple[np.ndarray, np.ndarray]], ops: tuple) -> float:
    """Mean SI-SDR gain (dB) of the masked output over the noisy input on the fixed validation clips."""
    torch = _torch()
    stft, istft, log_power = ops
    gains_db = []
    with torch.no_grad():
        for noisy, clean in val:
            x, c = torch.from_numpy(noisy), torch.from_numpy(clean)
            spec = stft(x)
            g, _ = model(log_power(spec), torch.zeros(model.layers, x.shape[0], model.hidden))
            y = istft(spec * g)[:, : c.shape[1]]
            gains_db.append((si_sdr_torch(y, c) - si_sdr_torch(x, c)).numpy())
    return float(np.mean(np.concatenate(gains_db)))


def export_checkpoint(ckpt_path: Path, onnx_path: Path, opset: int = 17) -> Path:
    """Export a checkpoint to ONNX (inputs ``input`` [B,T,161] and ``state_in_0`` [layers,B,hidden];
    outputs ``output`` and ``state_out_0``; batch and frames dynamic) and check it against torch."""
    torch = _torch()
    ckpt = torch.load(ckpt_path, weights_only=False)
    model = make_model(ckpt["mean"], ckpt["std"], **ckpt["hp"])
    model.load_state_dict(ckpt["model"])
    model.eval()
    model.fold_normalisation()
    feats = torch.randn(2, 50, BINS) * 2 - 5
    state = torch.zeros(model.layers, 2, model.hidden)
    torch.onnx.export(
        model,
        (feats, state),
        str(onnx_path),
        input_names=["input", "state_in_0"],
        output_names=["output", "state_out_0"],
        dynamic_axes={
            "input": {0: "batch", 1: "frames"},
            "state_in_0": {1: "batch"},
            "output": {0: "batch", 1: "frames"},
            "state_out_0": {1: "batch"},
        },
        opset_version=opset,
        dynamo=False,
    )
    import onnx

    m = onnx.load(str(onnx_path))
    m.doc_string = f"edge-sdk tiny-denoiser: {n_params(model)} parameters, {json.dumps(ckpt['hp'])}"
    onnx.save(m, str(onnx_path))
    with torch.no_grad():
        ref, ref_state = model(feats, state)
    check_onnx(onnx_path, feats.numpy(), state.numpy(), ref.numpy(), ref_state.numpy())
    return onnx_path


def check_onnx(
    path: Path, feats: np.ndarray, state: np.ndarray, ref: np.ndarray, ref_state: np.ndarray
) -> None:
    """Raise if the ONNX model differs from the torch outputs, or if running it frame by frame while
    carrying the state differs from running the whole sequence at once."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out, st = sess.run(None, {"input": feats, "state_in_0": state})
    if not (np.allclose(out, ref, atol=1e-5) and np.allclose(st, ref_state, atol=1e-5)):
        raise RuntimeError(f"ONNX differs from torch: {np.abs(out - ref).max():.2e}")
    frames, s = [], state
    for t in range(feats.shape[1]):
        o, s = sess.run(None, {"input": feats[:, t : t + 1], "state_in_0": s})
        frames.append(o)
    if not np.allclose(np.concatenate(frames, axis=1), out, atol=1e-5) or not np.allclose(s, st, atol=1e-5):
        raise RuntimeError("frame-by-frame ONNX run differs from the whole-sequence run")


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m edge_sdk.train.tiny_denoiser --out DIR --steps N``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="run folder (checkpoints, log, model.onnx)")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--clip", type=float, default=3.0, help="seconds per training clip")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--w-sisdr", dest="w_sisdr", type=float, default=0.01)
    p.add_argument(
        "--w-over", dest="w_over", type=float, default=0.0, help="weight of the residual-noise term"
    )
    p.add_argument(
        "--typing", type=float, default=0.0, help="share of clips whose noise is click trains over a floor"
    )
    p.add_argument(
        "--keys", type=float, default=0.0, help="share of the --typing noise made of recorded keyboards"
    )
    p.add_argument(
        "--init",
        help="fine-tune from this checkpoint's or exported model.onnx's weights (fresh optimizer, schedule)",
    )
    p.add_argument(
        "--broad",
        type=float,
        default=0.0,
        help="share of clips whose noise is drawn from the low-frequency kinds (noise_data.BROAD_KINDS)",
    )
    p.add_argument("--tts", type=int, default=1500, help="synthesised utterances")
    p.add_argument("--real", type=float, default=0.4, help="share of clips from the 8 kHz Asterisk prompts")
    p.add_argument(
        "--wide", type=float, default=0.0, help="share of clips from the G.722 (wideband) Asterisk prompts"
    )
    p.add_argument(
        "--wide-languages",
        dest="wide_languages",
        default=",".join(speech_data.WIDEBAND_VOICES),
        help="languages of the wideband prompts (Debian asterisk-core-sounds-LANG-g722)",
    )
    p.add_argument(
        "--wide-minutes", dest="wide_minutes", type=float, default=20.0, help="at most this much per language"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for this small GRU)")
    p.add_argument("--log-every", dest="log_every", type=int, default=50)
    p.add_argument("--eval-every", dest="eval_every", type=int, default=250)
    p.add_argument("--val-batches", dest="val_batches", type=int, default=4)
    p.add_argument("--export-only", dest="export_only", action="store_true", help="export best.pt and stop")
    p.add_argument(
        "--validate-only",
        dest="validate_only",
        action="store_true",
        help="print the validation scores of the --init (or resumed) weights and stop",
    )
    for k, v in DEFAULTS.items():
        p.add_argument(f"--{k}", type=int, default=v)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.export_only:
        print(export_checkpoint(Path(args.out) / "best.pt", Path(args.out) / "model.onnx"))
    else:
        print(train(args))


if __name__ == "__main__":
    main()
