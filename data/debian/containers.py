"""Readers for the containers games pack their sounds in: Qt resources (.rcc), OpenTTD's .cat.

Both are small binary formats with no Python reader on PyPI that Debian's data needs, so we
read them ourselves, from their documented layout (below), returning each member's bytes for
`decode_audio`.

Qt resource file (`rcc --binary`, read by `QResource::registerResource`), all integers
big-endian:

    header   "qres", version u32 (1, 2 or 3), tree offset u32, data offset u32, names offset u32,
             and for version >= 3 a u32 of overall flags (which compressions occur)
    tree     an array of nodes, node 0 the root; each node is
               name offset u32 (into names), flags u16 (1 zlib, 2 directory, 4 zstd), then
               directory: child count u32, index of its first child u32 (children are
                          consecutive nodes)
               file:      territory u16, language u16, data offset u32 (into data)
             and for version >= 2 a last-modified u64 (ms since the epoch): 14 or 22 bytes
    names    at names offset + name offset: length u16 (UTF-16 code units), hash u32, UTF-16BE
    data     at data offset + data offset: size u32, then the payload; a zlib payload is
             qCompress's: uncompressed size u32 + zlib stream; a zstd payload is one zstd frame

OpenTTD sample catalogue (`opensfx.cat`, read by OpenTTD's `sound.cpp`), little-endian:

    header   per sample: offset u32 (bit 31 set marks the current format), size u32; the first
             offset is where the samples begin, so it is 8 x the number of samples
    sample   at offset: name length u8, name (NUL-terminated), then `size` bytes of RIFF WAVE
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator

_RCC_MAGIC = b"qres"
_RCC_ZLIB, _RCC_DIRECTORY, _RCC_ZSTD = 0x1, 0x2, 0x4


class ContainerError(ValueError):
    """Raised when a container's bytes do not follow its format."""


def read_rcc(data: bytes) -> Iterator[tuple[str, bytes]]:
    """Yield `(path, content)` for every file in a Qt binary resource, in tree order.

    `path` is the resource path without the leading ":/" (e.g. "gcompris/src/core/a.wav");
    `content` is decompressed (zlib or zstd)."""
    if data[:4] != _RCC_MAGIC:
        raise ContainerError("not a Qt resource file (no 'qres' magic)")
    version, tree, payloads, names = struct.unpack_from(">IIII", data, 4)
    if version not in (1, 2, 3):
        raise ContainerError(f"unknown Qt resource version {version}")
    node_size = 14 if version == 1 else 22

    def name_at(offset: int) -> str:
        (length,) = struct.unpack_from(">H", data, names + offset)
        start = names + offset + 6  # after the length and the hash
        return data[start : start + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        node = tree + index * node_size
        name_offset, flags = struct.unpack_from(">IH", data, node)
        path = f"{prefix}{name_at(name_offset)}" if index else ""
        if flags & _RCC_DIRECTORY:
            count, first = struct.unpack_from(">II", data, node + 6)
            for child in range(first, first + count):
                yield from walk(child, f"{path}/" if path else "")
        else:
            (offset,) = struct.unpack_from(">I", data, node + 10)
            (size,) = struct.unpack_from(">I", data, payloads + offset)
            start = payloads + offset + 4
            yield path, _rcc_payload(data[start : start + size], flags, path)

    yield from walk(0, "")


def _rcc_payload(payload: bytes, flags: int, path: str) -> bytes:
    if flags & _RCC_ZLIB:
        (expected,) = struct.unpack_from(">I", payload)
        content = zlib.decompress(payload[4:])
        if len(content) != expected:
            raise ContainerError(f"{path}: {len(content)} bytes inflated, {expected} announced")
        return content
    if flags & _RCC_ZSTD:
        if shutil.which("zstd") is None:
            raise ContainerError(f"{path} is zstd-compressed and the `zstd` tool is not installed")
        return subprocess.run(
            ["zstd", "-d", "-c", "-q"], input=payload, capture_output=True, check=True
        ).stdout
    return payload


def read_openttd_cat(data: bytes) -> Iterator[tuple[str, bytes]]:
    """Yield `(name, wav_bytes)` for every sample of an OpenTTD sample catalogue, in order.

    `name` is the sample's description as stored (OpenSFX writes '"Title". By ... License: ...')."""
    if len(data) < 8:
        raise ContainerError("not an OpenTTD sample catalogue (too short)")
    count = (struct.unpack_from("<I", data)[0] & 0x7FFF_FFFF) // 8
    for index in range(count):
        offset, size = struct.unpack_from("<II", data, 8 * index)
        offset &= 0x7FFF_FFFF
        name_length = data[offset]
        name = data[offset + 1 : offset + 1 + name_length].split(b"\0")[0].decode("utf-8")
        wav = data[offset + 1 + name_length : offset + 1 + name_length + size]
        if wav[:4] != b"RIFF" or len(wav) != size:
            raise ContainerError(f"sample {index} ({name!r}) is not a whole RIFF WAVE file")
        yield name, wav
