"""A strict, pure-Python reader for TensorFlow "tensor bundle" checkpoints (float32 tensors only).

A TensorFlow checkpoint ``PREFIX`` (the V2 format, written by TF 1.x ``tf.train.Saver`` and by
TF 2) is two files:

* ``PREFIX.index``, a LevelDB-style SSTable mapping each variable name to a ``BundleEntryProto``
  (dtype, shape, shard_id, offset, size, masked CRC32-C of the tensor's bytes); the empty key holds
  a ``BundleHeaderProto`` (number of shards, endianness, format version);
* ``PREFIX.data-00000-of-00001``, the raw tensor bytes, concatenated.

The SSTable is a sequence of blocks followed by a 48-byte footer: the handles (varint offset and
size) of the metaindex and index blocks, zero padding, and the magic number ``0xdb4775248b80fb57``
(little-endian). Each block holds prefix-compressed entries ``(shared, non_shared, value_length,
key_delta, value)``, then the uint32 restart offsets and their count, and is followed by a 5-byte
trailer: the compression type (only 0, uncompressed, is accepted; TensorFlow writes bundles
uncompressed) and the masked CRC32-C of the block and its type byte. The index block maps a
separator key to the handle of each data block.

Everything is checked: the magic number, every block checksum, the restart points, the ordering
of keys, each protobuf's wire format, the tensor's byte size against its shape, that it lies inside
the data file, and its CRC32-C. Anything unexpected raises :class:`certsdp.errors.InputError` with
one line, so a corrupted download is refused rather than read.

This module does not use TensorFlow: it cannot be installed beside the torch that certsdp needs,
and reading four float32 arrays does not call for it.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from certsdp.errors import InputError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48  # two block handles padded to 2 x 10 bytes each, then the 8-byte magic number
BLOCK_TRAILER_SIZE = 5  # compression type byte + masked CRC32-C
DT_FLOAT = 1  # tensorflow.DataType.DT_FLOAT
HEADER_KEY = b""  # the bundle header's key (sorts first)
SUPPORTED_VERSION = 1  # tensor bundle format version that this reader understands

_CRC32C_POLY = 0x82F63B78  # Castagnoli polynomial, bit-reversed
_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF


def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC32C_POLY if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC32-C (Castagnoli) of ``data``, continuing from ``crc``; ``crc32c(b"123456789") == 0xE3069283``."""
    table = _CRC_TABLE
    crc ^= _U32
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ _U32


def mask_crc(crc: int) -> int:
    """TensorFlow's (and LevelDB's) masked CRC: rotate right by 15 bits, add ``0xa282ead8`` mod 2^32."""
    return ((((crc >> 15) | (crc << 17)) & _U32) + _MASK_DELTA) & _U32


@dataclass(frozen=True)
class BundleEntry:
    """One tensor's ``BundleEntryProto``: where its bytes are in the data file and their checksum."""

    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    masked_crc: int
    sliced: bool


def _varint(buf: bytes, pos: int, what: str) -> tuple[int, int]:
    """Decode an unsigned LEB128 varint of at most 64 bits at ``pos``; return (value, next pos)."""
    value = 0
    for shift in range(0, 70, 7):
        if pos >= len(buf):
            raise InputError(f"{what}: varint runs past the end")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if value >> 64:
                raise InputError(f"{what}: varint exceeds 64 bits")
            return value, pos
    raise InputError(f"{what}: varint longer than 10 bytes")


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >> 63 else value


def _proto_fields(buf: bytes, what: str) -> list[tuple[int, int, int | bytes]]:
    """Decode a protobuf message into ``(field number, wire type, value)`` triples, in order.

    Varints (wire type 0) and fixed 64/32-bit values (1, 5) decode to ints, length-delimited fields
    (2) to bytes; groups (3, 4) and unknown wire types are refused.
    """
    fields: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos, what)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise InputError(f"{what}: protobuf field number 0")
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos, what)
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if pos + width > len(buf):
                raise InputError(f"{what}: fixed-width field runs past the end")
            value = int.from_bytes(buf[pos : pos + width], "little")
            pos += width
        elif wire == 2:
            length, pos = _varint(buf, pos, what)
            if pos + length > len(buf):
                raise InputError(f"{what}: length-delimited field runs past the end")
            value, pos = buf[pos : pos + length], pos + length
        else:
            raise InputError(f"{what}: unsupported protobuf wire type {wire}")
        fields.append((number, wire, value))
    return fields


def _field_int(fields: list, number: int, wire: int, what: str, default: int = 0) -> int:
    """The last value of scalar field ``number`` (protobuf semantics), checked for its wire type."""
    value = default
    for num, w, val in fields:
        if num == number:
            if w != wire:
                raise InputError(f"{what}: field {number} has wire type {w}, expected {wire}")
            value = val
    return value


def _parse_shape(buf: bytes, what: str) -> tuple[int, ...]:
    """A ``TensorShapeProto``: repeated ``dim`` (field 2: ``size`` = field 1), ``unknown_rank`` (3)."""
    fields = _proto_fields(buf, what)
    if _field_int(fields, 3, 0, what):
        raise InputError(f"{what}: tensor shape has unknown rank")
    dims = []
    for num, wire, val in fields:
        if num == 2:
            if wire != 2:
                raise InputError(f"{what}: shape dim has wire type {wire}")
            size = _signed64(_field_int(_proto_fields(val, what), 1, 0, what))
            if size < 0:
                raise InputError(f"{what}: tensor shape has unknown dimension {size}")
            dims.append(size)
    return tuple(dims)


def parse_entry(buf: bytes, what: str) -> BundleEntry:
    """Decode a ``BundleEntryProto`` (dtype 1, shape 2, shard_id 3, offset 4, size 5, crc32c 6, slices 7)."""
    fields = _proto_fields(buf, what)
    shapes = [val for num, wire, val in fields if num == 2 and wire == 2]
    if any(num == 2 and wire != 2 for num, wire, _ in fields):
        raise InputError(f"{what}: shape field has the wrong wire type")
    offset = _signed64(_field_int(fields, 4, 0, what))
    size = _signed64(_field_int(fields, 5, 0, what))
    if offset < 0 or size < 0:
        raise InputError(f"{what}: negative offset {offset} or size {size}")
    return BundleEntry(
        dtype=_field_int(fields, 1, 0, what),
        shape=_parse_shape(b"".join(shapes), what),
        shard_id=_field_int(fields, 3, 0, what),
        offset=offset,
        size=size,
        masked_crc=_field_int(fields, 6, 5, what),
        sliced=any(num == 7 for num, _, _ in fields),
    )


def _block(table: bytes, handle: tuple[int, int], what: str) -> bytes:
    """The contents of the block at ``handle`` (offset, size), after checking its trailer."""
    offset, size = handle
    end = offset + size
    if end + BLOCK_TRAILER_SIZE > len(table) - FOOTER_SIZE:
        raise InputError(f"{what}: block at offset {offset} (size {size}) runs past the end of the table")
    contents = table[offset:end]
    kind = table[end]
    if kind != 0:
        raise InputError(f"{what}: block at offset {offset} is compressed (type {kind}); expected none")
    (stored,) = struct.unpack_from("<I", table, end + 1)
    if mask_crc(crc32c(table[offset : end + 1])) != stored:
        raise InputError(f"{what}: checksum mismatch in the block at offset {offset}")
    return contents


def _block_entries(block: bytes, what: str) -> list[tuple[bytes, bytes]]:
    """Decode a block's prefix-compressed ``(key, value)`` entries, checking its restart points."""
    if len(block) < 4:
        raise InputError(f"{what}: block of {len(block)} bytes is too short")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 - 4 * num_restarts
    if num_restarts < 1 or limit < 0:
        raise InputError(f"{what}: block has an invalid restart count {num_restarts}")
    restarts = struct.unpack_from(f"<{num_restarts}I", block, limit)
    entries: list[tuple[bytes, bytes]] = []
    fresh: set[int] = set()  # offsets of entries that share no prefix with the previous key
    key, pos = b"", 0
    while pos < limit:
        start = pos
        shared, pos = _varint(block, pos, what)
        unshared, pos = _varint(block, pos, what)
        length, pos = _varint(block, pos, what)
        if shared > len(key) or pos + unshared + length > limit:
            raise InputError(f"{what}: corrupt block entry at offset {start}")
        if shared == 0:
            fresh.add(start)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + length]))
        pos += length
    if not entries and restarts == (0,):
        return entries
    if any(r not in fresh for r in restarts) or list(restarts) != sorted(set(restarts)) or 0 not in restarts:
        raise InputError(f"{what}: block has restart points {list(restarts)} that do not start entries")
    return entries


def read_table(table: bytes, what: str) -> dict[bytes, bytes]:
    """All ``key -> value`` entries of an SSTable (the ``.index`` file), in key order."""
    if len(table) < FOOTER_SIZE:
        raise InputError(f"{what}: {len(table)} bytes is too short for a table")
    footer = table[-FOOTER_SIZE:]
    (magic,) = struct.unpack_from("<Q", footer, FOOTER_SIZE - 8)
    if magic != TABLE_MAGIC:
        raise InputError(f"{what}: bad magic number 0x{magic:016x} (not a TensorFlow checkpoint index)")
    pos = 0
    handles = []
    for _ in range(2):  # metaindex handle, index handle
        offset, pos = _varint(footer, pos, what)
        size, pos = _varint(footer, pos, what)
        handles.append((offset, size))
    _block_entries(_block(table, handles[0], what), what)  # metaindex: checked, unused
    result: dict[bytes, bytes] = {}
    last: bytes | None = None
    for separator, encoded in _block_entries(_block(table, handles[1], what), what):
        offset, pos = _varint(encoded, 0, what)
        size, pos = _varint(encoded, pos, what)
        if pos != len(encoded):
            raise InputError(f"{what}: index entry has trailing bytes")
        for key, value in _block_entries(_block(table, (offset, size), what), what):
            if (last is not None and key <= last) or key > separator:
                raise InputError(f"{what}: keys are out of order at {key!r}")
            result[key] = value
            last = key
    return result


def _check_header(value: bytes, what: str) -> None:
    """The ``BundleHeaderProto``: one shard, little-endian, a version this reader supports."""
    fields = _proto_fields(value, what)
    shards = _field_int(fields, 1, 0, what)
    if shards != 1:
        raise InputError(f"{what}: checkpoint has {shards} shards; only single-shard bundles are supported")
    if _field_int(fields, 2, 0, what) != 0:
        raise InputError(f"{what}: checkpoint is big-endian; only little-endian bundles are supported")
    versions = [val for num, wire, val in fields if num == 3 and wire == 2]
    min_consumer = _field_int(_proto_fields(b"".join(versions), what), 2, 0, what)
    if min_consumer > SUPPORTED_VERSION:
        raise InputError(f"{what}: checkpoint format needs a reader of version {min_consumer} or later")


def _tensor(name: str, entry: BundleEntry, data: bytes, what: str) -> np.ndarray:
    """The float32 tensor ``name`` described by ``entry``, its size, bounds and CRC checked."""
    where = f"{what}: tensor {name}"
    if entry.dtype != DT_FLOAT:
        raise InputError(f"{where} has dtype {entry.dtype}; only float32 (DT_FLOAT = 1) is supported")
    if entry.shard_id != 0 or entry.sliced:
        raise InputError(f"{where} is sharded or sliced; only whole tensors in shard 0 are supported")
    expected = 4 * math.prod(entry.shape)
    if entry.size != expected:
        raise InputError(f"{where} has {entry.size} bytes, but shape {entry.shape} needs {expected}")
    if entry.offset + entry.size > len(data):
        raise InputError(
            f"{where} lies at bytes {entry.offset}..{entry.offset + entry.size} but the data file has "
            f"{len(data)} bytes (truncated?)"
        )
    raw = data[entry.offset : entry.offset + entry.size]
    if mask_crc(crc32c(raw)) != entry.masked_crc:
        raise InputError(f"{where}: CRC32-C mismatch (corrupted data file)")
    return np.frombuffer(raw, dtype="<f4").reshape(entry.shape).astype(np.float32)


def read_bundle(index: bytes, data: bytes, what: str = "checkpoint") -> dict[str, np.ndarray]:
    """All tensors of a single-shard float32 checkpoint: ``name -> float32 array`` (a fresh copy).

    ``index`` and ``data`` are the bytes of ``PREFIX.index`` and ``PREFIX.data-00000-of-00001``;
    ``what`` names the checkpoint in error messages. Raises :class:`InputError` on any corruption.
    """
    entries = read_table(index, f"{what}.index")
    if HEADER_KEY not in entries:
        raise InputError(f"{what}.index has no bundle header (not a tensor bundle)")
    _check_header(entries.pop(HEADER_KEY), f"{what}.index")
    tensors: dict[str, np.ndarray] = {}
    for key, value in entries.items():
        try:
            name = key.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{what}.index has a tensor name that is not UTF-8: {key!r}") from None
        entry = parse_entry(value, f"{what}.index: entry {name}")
        tensors[name] = _tensor(name, entry, data, f"{what}.data")
    return tensors
