#!/usr/bin/env python3
"""Run llama.cpp's convert_hf_to_gguf.py on the tiny gpt-oss made by
make_gptoss_reference.py.

The tiny model's tokenizer is a small BPE with o200k's pre-tokenizer, not the real
o200k vocabulary, so the converter's pre-tokenizer detection (a hash of the token ids
of a fixed text) does not know it and stops.  This wrapper answers `gpt-4o` -- the
name the converter gives the real gpt-oss tokenizer -- only when the converter's
own detection fails; everything else (tensors, metadata) is the converter's own.

Usage:
  python3 convert_reference_gptoss.py LLAMA_CPP_DIR -- HF_DIR --outfile OUT.gguf --outtype bf16
"""

import importlib
import sys


def main():
    if len(sys.argv) < 3 or sys.argv[2] != "--":
        raise SystemExit(__doc__)
    llama_cpp = sys.argv[1]
    sys.path.insert(0, llama_cpp)
    converter = importlib.import_module("convert_hf_to_gguf")
    try:
        base = importlib.import_module("conversion.base")
        text_model = base.TextModel
    except ImportError:  # older llama.cpp: everything in one file
        text_model = converter.TextModel
    detect = text_model.get_vocab_base_pre

    def detect_or_gpt4o(self, tokenizer):
        try:
            return detect(self, tokenizer)
        except NotImplementedError:
            print("convert_reference_gptoss: unknown pre-tokenizer hash, using gpt-4o", file=sys.stderr)
            return "gpt-4o"

    text_model.get_vocab_base_pre = detect_or_gpt4o
    sys.argv = ["convert_hf_to_gguf.py"] + sys.argv[3:]
    converter.main()


if __name__ == "__main__":
    main()
