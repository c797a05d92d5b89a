#!/usr/bin/env python3
"""Runs an exported sfr2l ONNX model in onnxruntime: the second, independent ONNX consumer the
parity tests compare against tract and burn.

usage: onnx_predict.py MODEL.onnx INPUT.json OUTPUT.json
INPUT.json: {"rows": [[f0, ..., f8], ...]} raw features in the model's input order; each graph
input is fed its column as a [batch, 1] float32 tensor (or the whole row for a single input).
OUTPUT.json: {"names": [...], "outputs": {name: nested list}, "metadata": {...}}
"""
import json
import sys

import numpy as np
import onnxruntime as ort


def main(model, inp, out):
    rows = np.asarray(json.load(open(inp))["rows"], dtype=np.float32)
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    inputs = sess.get_inputs()
    if len(inputs) == 1:
        feed = {inputs[0].name: rows}
    else:
        feed = {i.name: rows[:, k : k + 1] for k, i in enumerate(inputs)}
    names = [o.name for o in sess.get_outputs()]
    res = sess.run(names, feed)
    meta = sess.get_modelmeta().custom_metadata_map
    json.dump({"names": names, "inputs": [i.name for i in inputs],
               "outputs": {n: r.tolist() for n, r in zip(names, res)}, "metadata": meta}, open(out, "w"))


if __name__ == "__main__":
    main(*sys.argv[1:4])
