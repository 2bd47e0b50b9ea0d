"""Quantisation shared by the targets: how many bits int8 weights use, int4 weight compression, the
accuracy-aware search (with per-layer sensitivity) and the input front-end that static int8 keeps float."""
