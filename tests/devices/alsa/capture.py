"""Run one microphone scenario in a fresh process and print what happened as JSON on stdout.

ALSA reads ALSA_CONFIG_PATH once, when PortAudio initialises it, so each scenario needs a process of
its own with that variable set. Usage: ``python capture.py '{"device": "edgesdk_mic", ...}'``. Keys:
``list`` (only list the input devices), ``spec`` (open via open_audio_source instead of Microphone),
``device``, ``sample_rate``, ``block_size``, ``buffer_blocks``, ``drop``, ``device_rate``,
``wait`` (seconds to let the stream run before reading), ``blocks`` (how many to read),
``out`` (a .npy file for the samples read), ``debug`` (log at DEBUG, which keeps ALSA's noise).
"""

from __future__ import annotations

import json
import logging
import sys
import time

import numpy as np


def main() -> None:
    args = json.loads(sys.argv[1])
    if args.get("debug"):
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    from edge_sdk.devices import Microphone, list_input_devices, open_audio_source
    from edge_sdk.errors import EdgeSDKError

    result: dict = {}
    try:
        if args.get("list"):
            result["devices"] = [vars(d) for d in list_input_devices()]
            print(json.dumps(result))
            return
        if "spec" in args:
            mic = open_audio_source(args["spec"], block_size=args.get("block_size", 320))
        else:
            keys = ("sample_rate", "block_size", "buffer_blocks", "drop", "device_rate")
            mic = Microphone(args.get("device"), **{k: args[k] for k in keys if k in args})
        with mic:
            mic.start()
            time.sleep(args.get("wait", 0.0))
            overruns_before_read = mic.overruns
            blocks = []
            for block in mic:
                blocks.append(block)
                if len(blocks) >= args.get("blocks", 10):
                    break
            result.update(
                name=mic.name,
                opened_rate=mic.opened_rate,
                rate_reason=mic.rate_reason,
                resample_method=mic.resample_method,
                overruns_before_read=overruns_before_read,
                overruns=mic.overruns,
                overflows=mic.overflows,
                shapes=sorted({b.shape[0] for b in blocks}),
                dtypes=sorted({str(b.dtype) for b in blocks}),
                max_abs=float(max(np.abs(b).max() for b in blocks)),
            )
            if "out" in args:
                np.save(args["out"], np.concatenate(blocks))
    except EdgeSDKError as e:
        result["error"] = {"type": type(e).__name__, "message": str(e)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
