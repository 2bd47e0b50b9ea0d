"""Work on the ONNX hub model before any target: reading it with clear errors, simplifying it, fixing input
values and shapes, and making recurrent state streamable."""
