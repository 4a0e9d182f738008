"""The IPR codec's file format: one image's entropy-coded strings behind a small header, so that a bitstream decodes
on its own and the rate counts every byte stored.

Layout: magic ``b"BC"``, format version (1 byte), image height and width (LEB128 varints), number of strings
(1 byte), then each string as a varint length and its bytes. For a 128 x 128 image with a hyperprior's two
strings the overhead is 8-10 bytes (~0.005 bpp). The image size is the unpadded original's: the decoder pads it
to the codec's stride to find the latent shape and crops the reconstruction back.
"""

from __future__ import annotations

MAGIC = b"BC"
VERSION = 1


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("Corrupt codec bitstream: it ends inside a length field.")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def pack(strings: list[bytes], height: int, width: int) -> bytes:
    """One image's bitstream: header + ``strings`` (one per entropy model, in the codec's order)."""
    if not 0 < len(strings) < 256:
        raise ValueError(f"A codec bitstream holds 1-255 strings, got {len(strings)}.")
    parts = [MAGIC, bytes([VERSION]), _varint(height), _varint(width), bytes([len(strings)])]
    for s in strings:
        parts += [_varint(len(s)), s]
    return b"".join(parts)


def unpack(data: bytes) -> tuple[list[bytes], int, int]:
    """``(strings, height, width)`` of a bitstream written by :func:`pack`; a clear ``ValueError`` otherwise."""
    if len(data) < 4 or data[:2] != MAGIC:
        raise ValueError("Not a biobench codec bitstream (it does not start with the magic bytes b'BC').")
    if data[2] != VERSION:
        raise ValueError(f"Codec bitstream format version {data[2]} is not supported (this reader: {VERSION}).")
    height, pos = _read_varint(data, 3)
    width, pos = _read_varint(data, pos)
    if pos >= len(data) or not height or not width:
        raise ValueError("Corrupt codec bitstream: truncated header.")
    count, pos = data[pos], pos + 1
    strings = []
    for _ in range(count):
        length, pos = _read_varint(data, pos)
        if pos + length > len(data):
            raise ValueError(f"Corrupt codec bitstream: a string of {length} bytes runs past its end ({len(data)}).")
        strings.append(data[pos : pos + length])
        pos += length
    if pos != len(data):
        raise ValueError(f"Corrupt codec bitstream: {len(data) - pos} bytes after the last string.")
    return strings, height, width
