#!/usr/bin/env python3
"""Run llama.cpp's convert_hf_to_gguf.py on the tiny Gemma 4 checkpoints of make_gemma4_reference.py.

llama.cpp's converter reads config.json through transformers' AutoConfig when it can. transformers 5.17
moves Gemma 4's global_head_dim (and num_global_key_value_heads) into a per-layer config, so the
converter's Gemma4Model, which reads hparams["global_head_dim"], stops with a KeyError. This wrapper
makes the converter take its own fallback, config.json as written; everything else (tensors, metadata,
tokenizer) is the converter's own.

Usage:
  python3 convert_reference_gemma4.py LLAMA_CPP_DIR -- HF_DIR --outfile OUT.gguf --outtype f32
"""

import importlib
import sys


class _ConfigJsonOnly:
    @staticmethod
    def from_pretrained(*args, **kwargs):
        raise RuntimeError("convert_reference_gemma4.py: reading config.json as written")


def main():
    if len(sys.argv) < 3 or sys.argv[2] != "--":
        raise SystemExit(__doc__)
    sys.path.insert(0, sys.argv[1])
    converter = importlib.import_module("convert_hf_to_gguf")
    try:
        importlib.import_module("conversion.base").AutoConfig = _ConfigJsonOnly
    except ImportError:  # older llama.cpp: everything in one file
        converter.AutoConfig = _ConfigJsonOnly
    sys.argv = ["convert_hf_to_gguf.py"] + sys.argv[3:]
    converter.main()


if __name__ == "__main__":
    main()
