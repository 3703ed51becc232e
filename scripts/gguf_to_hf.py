"""GGUF → Hugging Face folder, offline, with transformers' GGUF support (run in the vLLM virtualenv).

vLLM 0.32 cannot serve this GGUF on a CPU (its GGUF kernels need CUDA), so the embedded model is converted
once: loaded in fp32, stripped of its GGUF quantizer (save_pretrained refuses a "quantized" model), saved
with its tokenizer. Usage: python gguf_to_hf.py MODEL.gguf OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def convert(gguf: Path, out: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


if __name__ == "__main__":
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
