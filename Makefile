# Two commands on a fresh clone: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
EXTRAS ?= torch,openvino,tflite,litert-torch,audio,camera,bench,train,prune,keras,dev
ONNX2TF := onnx2tf==1.29.24
PYCTCDECODE := pyctcdecode==0.5.0 pygtrie==2.6.2

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	# Debian packages pip cannot bring (portaudio19-dev for PyAudio, espeak-ng); installs only what is missing
	.ci/system-deps $(PYTHON)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	# onnx2tf pins exact old versions of everything; it runs with ours (see the tflite extra)
	$(PY) -m pip install --quiet --no-deps $(ONNX2TF)
	# pyctcdecode (the CTC decoder's reference in the tests) declares numpy<2 but runs with ours
	$(PY) -m pip install --quiet --no-deps $(PYCTCDECODE)
	touch $@

demo: $(STAMP)
	$(VENV)/bin/edge-sdk demo

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check edge_sdk converters runtimes devices tests bench tools
	$(PY) -m ruff format --check edge_sdk converters runtimes devices tests bench tools
	$(PY) -m mypy edge_sdk/__init__.py

bench: $(STAMP)
	$(PY) bench/quantize_speedup.py

clean:
	rm -rf $(VENV) demo-out artifacts .pytest_cache
