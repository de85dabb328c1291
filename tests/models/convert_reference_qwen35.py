#!/usr/bin/env python3
"""Run llama.cpp's convert_hf_to_gguf.py on the tiny Qwen3.5-MoE that qwen35_tiny.py defines.

llama.cpp recognises a BPE pre-tokenizer by hashing the ids its tokenizer gives for a fixed text;
the tiny model's small vocabulary has no known hash, so the converter would stop. This wrapper
answers `qwen35` (the name the converter gives Qwen3.5's real tokenizer) only when that detection
fails, and passes --no-mtp where the converter has it (the tiny model has no MTP block); tensors
and metadata are the converter's own.

Usage: python3 convert_reference_qwen35.py LLAMA_CPP_DIR -- HF_DIR --outfile OUT.gguf --outtype f32
"""

import importlib
import sys


def main():
    if len(sys.argv) < 3 or sys.argv[2] != "--":
        raise SystemExit(__doc__)
    sys.path.insert(0, sys.argv[1])
    converter = importlib.import_module("convert_hf_to_gguf")
    try:
        text_model = importlib.import_module("conversion.base").TextModel
    except ImportError:  # older llama.cpp: everything in one file
        text_model = converter.TextModel
    detect = text_model.get_vocab_base_pre

    def detect_or_qwen35(self, tokenizer):
        try:
            return detect(self, tokenizer)
        except NotImplementedError:
            print("convert_reference_qwen35: unknown pre-tokenizer hash, using qwen35", file=sys.stderr)
            return "qwen35"

    text_model.get_vocab_base_pre = detect_or_qwen35
    extra = []
    # a checkpoint without the MTP block: newer converters append it unless told not to (and assert
    # it is there), older ones know no such option
    with open(converter.__file__, encoding="utf-8") as f:
        if "--no-mtp" in f.read():
            extra.append("--no-mtp")
    sys.argv = ["convert_hf_to_gguf.py"] + sys.argv[3:] + extra
    converter.main()


if __name__ == "__main__":
    main()
