"""Where audio and video come from: microphone (PyAudio), WAV replay, camera (OpenCV/V4L2, GStreamer,
picamera2), video file replay, and the ring buffer and resampler between a device's thread and a loop.
``open_audio_source`` and ``open_video_source`` pick one from a spec string."""
