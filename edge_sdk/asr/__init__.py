"""Speech recognition: Whisper, CTC and transducer models run from ONNX artifacts, with model-independent
decoding (greedy, beam search, hotwords, a word n-gram language model) that streams chunk by chunk."""

from edge_sdk.asr.recognizer import Recognizer, RecognizerStream, StreamResult
from edge_sdk.asr.whisper import DecodeOptions, Transcription

__all__ = ["DecodeOptions", "Recognizer", "RecognizerStream", "StreamResult", "Transcription"]
