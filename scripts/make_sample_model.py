#!/usr/bin/env python3
"""Writes a small, valid safetensors model (random weights) for demos and benchmarks.

usage: make_sample_model.py OUT [SIZE_MIB]
"""
import json
import os
import struct
import sys

def main() -> None:
    out = sys.argv[1]
    size_mib = float(sys.argv[2]) if len(sys.argv) > 2 else 8
    layers = max(1, int(size_mib * 1024 * 1024 // (4 * 256 * 256)))
    header, offset, tensors = {"__metadata__": {"format": "pt", "source": "hmodctl demo"}}, 0, []
    for i in range(layers):
        for name, shape in ((f"model.layers.{i}.weight", [256, 256]), (f"model.layers.{i}.bias", [256])):
            nbytes = 4
            for d in shape:
                nbytes *= d
            header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + nbytes]}
            tensors.append(nbytes)
            offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # safetensors pads the header to 8 bytes with spaces
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for nbytes in tensors:
            f.write(os.urandom(nbytes))

if __name__ == "__main__":
    main()
