"""safetensors files by their specification (a u64 header length, a JSON header padded with spaces to
8 bytes, then the raw little-endian data), for the tiny reference models' scripts, which run with
numpy alone (gemma4_tiny.py, qwen35_tiny.py, make_qwen35_reference_local.py,
make_gptoss_reference_local.py). The header is written compact, in the order the tensors are given,
so the tiny checkpoints stay byte for byte what they were.
"""

import json
import struct


def write(path, tensors, metadata=None):
    """tensors: (name, dtype, shape, raw bytes) in file order; metadata, if given, is the header's
    __metadata__ entry (after the tensors')."""
    header, offset = {}, 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for *_, raw in tensors:
            f.write(raw)


def read(path):
    """name -> (dtype, shape, raw bytes) of every tensor in the file (the metadata left out)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = (info["dtype"], info["shape"], data[b:e])
    return out
