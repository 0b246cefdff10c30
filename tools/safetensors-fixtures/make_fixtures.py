#!/usr/bin/env python3
"""Writes the safetensors test fixtures used by org.prilora.io.SafeTensorsFixtureTest.

This is an *independent* writer: it shares no code with the Java implementation and
builds every file byte by byte from the format description at
https://github.com/huggingface/safetensors (numpy for the data, json + struct for the
header). The `safetensors` package itself cannot be installed in this environment, so
the script follows the official writer's conventions by hand:

  * 8-byte little-endian unsigned header length, then the UTF-8 JSON header,
    then the data buffer (little-endian, row-major);
  * compact JSON (no spaces), non-ASCII written raw (serde_json does not escape it),
    "__metadata__" first, tensor entries as {"dtype", "shape", "data_offsets"};
  * header padded with spaces to a multiple of 8 bytes;
  * tensors laid out by dtype rank descending (the order of the reference `Dtype`
    enum, i.e. alignment), then by name.

Usage (from the repository root):
    python3 tools/safetensors-fixtures/make_fixtures.py \
        prilora-samediff-ops/src/test/resources/safetensors

The output is deterministic; rerunning must leave the committed files unchanged.
"""
import json
import os
import struct
import sys

import numpy as np

# Reference Dtype enum order (safetensors/src/tensor.rs); the writer sorts by it, descending.
DTYPE_RANK = ["BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
              "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64"]

NUMPY_DTYPE = {"BOOL": "|b1", "U8": "|u1", "I8": "|i1", "I16": "<i2", "U16": "<u2", "F16": "<f2",
               "I32": "<i4", "U32": "<u4", "F32": "<f4", "F64": "<f8", "I64": "<i8", "U64": "<u8"}


def raw(dtype, shape, values):
    """Little-endian C-order bytes of `values` as `dtype`."""
    arr = np.array(values, dtype=NUMPY_DTYPE[dtype]).reshape(shape)
    return np.ascontiguousarray(arr).tobytes(order="C")


def bf16(shape, values):
    """numpy has no bfloat16: take the top 16 bits of each float32 (values must be exact)."""
    f32 = np.array(values, dtype="<f4").reshape(shape)
    bits = (f32.view("<u4") >> 16).astype("<u2")
    assert np.array_equal((bits.astype("<u4") << 16).view("<f4"), f32), "value not exact in bf16"
    return bits.tobytes(order="C")


def canonical_file(tensors, metadata):
    """tensors: dict name -> (dtype, shape, bytes). Official-writer layout."""
    order = sorted(tensors, key=lambda n: (-DTYPE_RANK.index(tensors[n][0]), n))
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    data = b""
    for name in order:
        dtype, shape, payload = tensors[name]
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def mixed():
    """Every dtype the brief asks for plus a scalar, an empty tensor and metadata."""
    t = {
        "weight": ("F32", [2, 3], raw("F32", [2, 3], np.arange(6) * 0.5 - 1.0)),
        "bias": ("F64", [4], raw("F64", [4], [1.0 / 3.0, -2.5, 1e-300, 12345.678])),
        "ids": ("I64", [2, 2], raw("I64", [2, 2], [0, -1, 2**40 + 7, -(2**62)])),
        "scale": ("F32", [], raw("F32", [], 0.125)),
        "empty": ("F32", [0, 3], raw("F32", [0, 3], [])),
        "counts": ("I32", [3], raw("I32", [3], [-2**31, 0, 2**31 - 1])),
        "half": ("F16", [2, 2], raw("F16", [2, 2], [1.0, -0.5, 65504.0, 2.0**-24])),
        "bf": ("BF16", [3], bf16([3], [1.0, -2.5, 3.140625])),
    }
    meta = {"format": "pt", "prilora.rank": "8", "note": "ünïcödé ✓ \"quoted\""}
    return canonical_file(t, meta)


def alltypes():
    """The remaining integer/bool dtypes, at their extremes; no metadata."""
    t = {
        "bool": ("BOOL", [4], raw("BOOL", [4], [True, False, False, True])),
        "u8": ("U8", [3], raw("U8", [3], [0, 127, 255])),
        "i8": ("I8", [3], raw("I8", [3], [-128, 0, 127])),
        "i16": ("I16", [2], raw("I16", [2], [-32768, 32767])),
        "u16": ("U16", [2], raw("U16", [2], [0, 65535])),
        "u32": ("U32", [2], raw("U32", [2], [0, 4294967295])),
        "u64": ("U64", [2], raw("U64", [2], [0, 2**63 - 1])),
    }
    return canonical_file(t, None)


def empty():
    """No tensors at all: header "{}" padded to 8 bytes, empty data buffer."""
    return canonical_file({}, None)


def unordered():
    """A valid file that follows none of the writer's conventions: header entries not in
    offset order, keys inside entries reordered, pretty-printed JSON, no padding, an
    unknown extra field (the reference reader ignores those) and misaligned data."""
    b = raw("F16", [3], [0.5, -1.0, 2.0])           # data [0, 6)
    a = raw("F64", [2], [-0.25, 1e10])              # data [6, 22)  (not 8-aligned)
    c = raw("I32", [], 42)                           # data [22, 26)
    z = raw("U8", [0], [])                           # data [26, 26)
    header = {
        "z": {"data_offsets": [26, 26], "shape": [0], "dtype": "U8"},
        "a": {"shape": [2], "dtype": "F64", "data_offsets": [6, 22],
              "extra": {"nested": [1, 2]}},
        "c": {"dtype": "I32", "data_offsets": [22, 26], "shape": []},
        "b": {"dtype": "F16", "shape": [3], "data_offsets": [0, 6]},
    }
    text = json.dumps(header, indent=1).encode("utf-8") + b"\n"
    if len(text) % 8 == 0:          # make sure this file really is unpadded
        text += b"\n"
    return struct.pack("<Q", len(text)) + text + b + a + c + z


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out, exist_ok=True)
    for name, make in [("mixed", mixed), ("alltypes", alltypes), ("empty", empty),
                       ("unordered", unordered)]:
        blob = make()
        path = os.path.join(out, name + ".safetensors")
        with open(path, "wb") as f:
            f.write(blob)
        (n,) = struct.unpack("<Q", blob[:8])
        print(f"{path}: {len(blob)} bytes, header {n} bytes")
        print("   ", blob[8:8 + n].decode("utf-8").replace("\n", " "))


if __name__ == "__main__":
    main()
