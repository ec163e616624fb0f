"""Compression of stored values with a dictionary per entity kind.

A stored entity is a few hundred bytes of the partner's JSON whose field names, enum values
and shape repeat from one entity of a kind to the next; on its own it barely deflates. A
zstd dictionary trained on values of the kind carries what repeats, so each value keeps
only what is its own (ids, amounts, times): about 40% of its deflated size (`partnersync
bench --scale` measures it).

Each partner package ships its dictionaries (`dictionaries/<kind>.zdict`, trained by
`python -m cli.bench.dictionaries`); `Catalog` registers them when the partners load. A
frame names its dictionary by id, so a value written with an older dictionary still reads
once a newer one ships, as long as the old file stays in the package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import zstandard

LEVEL = 3  # level 19 saves ~5% more for 30× the CPU on each write
# Frames without zstd's 4-byte magic number: the value's format byte already says what it
# is, and 4 bytes are 2% of a value. Dictionary ids below 65,536 take 2 bytes in a frame.
FORMAT = zstandard.FORMAT_ZSTD1_MAGICLESS
_PARAMS = zstandard.ZstdCompressionParameters.from_level(
    LEVEL, format=FORMAT, write_checksum=False, write_content_size=False, write_dict_id=True
)


class UnknownDictionary(LookupError):
    """A value was compressed with a dictionary no loaded partner ships."""


@dataclass
class Dictionaries:
    """The dictionaries of the loaded partners: by kind for writing, by id for reading."""

    by_kind: dict[str, zstandard.ZstdCompressor] = field(default_factory=dict)
    by_id: dict[int, zstandard.ZstdDecompressor] = field(default_factory=dict)

    def add(self, partner: str, directory: Path) -> None:
        """Every `<kind>.zdict` in `directory`; the newest file of a kind (by name order:
        `<kind>.zdict`, then `<kind>.2.zdict`, …) compresses, all of them read."""
        for _version, kind, path in sorted(_versions(directory)):
            data = zstandard.ZstdCompressionDict(path.read_bytes())
            self.by_id[data.dict_id()] = zstandard.ZstdDecompressor(dict_data=data, format=FORMAT)
            self.by_kind[f"{partner}:{kind}"] = zstandard.ZstdCompressor(
                compression_params=_PARAMS, dict_data=data
            )

    def compress(self, partner: str, kind: str, body: bytes) -> bytes | None:
        """The body compressed with its kind's dictionary (None: the kind has none)."""
        compressor = self.by_kind.get(f"{partner}:{kind}")
        return compressor.compress(body) if compressor is not None else None

    def decompress(self, frame: bytes) -> bytes:
        dict_id = zstandard.get_frame_parameters(frame, format=FORMAT).dict_id
        decompressor = self.by_id.get(dict_id)
        if decompressor is None:
            raise UnknownDictionary(
                f"a stored value needs zstd dictionary {dict_id}, which no loaded partner ships"
            )
        return decompressor.decompressobj().decompress(frame)


def _versions(directory: Path) -> list[tuple[int, str, Path]]:
    found = []
    for path in directory.glob("*.zdict"):
        kind, _, rest = path.name.removesuffix(".zdict").partition(".")
        found.append((int(rest) if rest.isdigit() else 1, kind, path))
    return found


# The partners' dictionaries, filled as `partner.Catalog` loads them: a stored value is read
# in many places that know only its key, and the dictionaries are data shipped with code.
DICTIONARIES = Dictionaries()
