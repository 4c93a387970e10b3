"""Zero the CUDA machine code a shared library holds for every GPU architecture but one.

onnxruntime-gpu 1.31.1's CUDA provider library is 284 MB (185 MB compressed): too large for the
device machine's 64 MiB transfer. Its ``.nv_fatbin`` section holds one cubin per architecture for each
kernel (sm_75, 80, 86, 89, 90, 120; no PTX). An H200 (sm_90) only ever loads the sm_90 cubins, so the
others' payloads are overwritten with zeros, their headers and every offset kept: the file keeps its
size and layout and compresses to 52 MB (``xz -9e``).

    python reports/h200/fatbin_keep_arch.py libonnxruntime_providers_cuda.so stripped.so 90

Fatbin layout as read here: a 16-byte header (magic 0xBA55ED50, version 1, header size, size of the
entries), then entries each with a header (kind, header size, payload size at offset 8, architecture at
offset 28) followed by the payload. Prints the bytes per (kind, architecture) and the bytes zeroed.
"""

from __future__ import annotations

import collections
import struct
import sys
from pathlib import Path

MAGIC = struct.pack("<I", 0xBA55ED50)


def keep_arch(data: bytearray, keep: int) -> tuple[collections.Counter, int]:
    sizes: collections.Counter = collections.Counter()
    zeroed = 0
    position = 0
    while (start := data.find(MAGIC, position)) >= 0:
        _, version, header_size, entries_size = struct.unpack_from("<IHHQ", data, start)
        if version != 1 or header_size != 16 or entries_size > len(data):
            position = start + 4
            continue
        entry, end = start + header_size, start + header_size + entries_size
        while entry < end:
            kind, _, entry_header, payload = struct.unpack_from("<HHIQ", data, entry)
            arch = struct.unpack_from("<I", data, entry + 28)[0]
            sizes[(kind, arch)] += payload
            if arch != keep:
                data[entry + entry_header : entry + entry_header + payload] = bytes(payload)
                zeroed += payload
            entry += entry_header + payload
        position = end
    return sizes, zeroed


def main() -> None:
    source, target, keep = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    data = bytearray(source.read_bytes())
    sizes, zeroed = keep_arch(data, keep)
    target.write_bytes(data)
    for (kind, arch), size in sorted(sizes.items()):
        sys.stdout.write(f"kind {kind} sm_{arch}: {size / 1e6:.1f} MB\n")
    sys.stdout.write(f"zeroed {zeroed / 1e6:.1f} MB of {len(data) / 1e6:.1f} MB\n")


if __name__ == "__main__":
    main()
