"""Live loops: a source, a chain of stages, events and sinks, with per-stage latency and drop counts.

``AudioLoop`` (``audio``) and ``VideoLoop`` (``video``) share ``base``; ``stats`` keeps the latency
histograms; ``events`` writes events as JSON lines; ``sinks`` and ``preview`` are where video frames go."""
