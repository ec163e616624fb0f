"""Stored values compressed with a dictionary per kind (partnersync/packing.py, #38)."""

from __future__ import annotations

import zlib
from datetime import timedelta
from pathlib import Path

import pytest
import zstandard

from cli.bench import mix
from partnersync import commands, packing, partner, store

CATALOG = partner.load(("partners.tradevest", "partners.saxo"))


def stored(sample: mix.Sample) -> tuple[store.EntityRecord, list[store.Transition]]:
    writes = mix.writes(sample)
    return writes[-1][0], [transition for _, transition in writes]


SAMPLES = list(mix.samples(mix.PER_CLIENT, mix.now() - timedelta(days=3), timedelta(days=1)))


@pytest.mark.parametrize("sample", SAMPLES, ids=[f"{s.partner}-{s.kind}" for s in SAMPLES])
def test_each_kind_of_both_partners_is_stored_with_its_dictionary(sample: mix.Sample) -> None:
    record, history = stored(sample)
    value = store.encode(record, history)
    assert value[:1] == b"\x03"  # zstd with the kind's dictionary, not deflate
    deflated = len(zlib.compress(store.packed(record, history), 6, -15))
    assert len(value) < 0.75 * deflated
    back = store.decode(record.key, value)
    assert back is not None and back.record == record and back.history == history


def test_a_command_record_is_stored_compressed_and_reads_back() -> None:
    record = next(r for s in SAMPLES if (r := mix.command_record(s)) is not None)
    value = commands.encode(record)
    assert value[:1] == b"\x03" and commands.decode(value) == record
    assert commands.decode(b'{"externalId":"x","partner":"p","kind":"k","body":{},'
                           b'"createdAt":"2026-01-01T00:00:00Z",'
                           b'"updatedAt":"2026-01-01T00:00:00Z"}').externalId == "x"  # fmt: skip


def test_a_value_written_with_an_older_dictionary_reads_once_a_newer_one_ships(
    tmp_path: Path,
) -> None:
    values = [store.packed(*stored(s)) for s in SAMPLES if s.kind == "transfer"] * 40
    old = zstandard.train_dictionary(1024, values, dict_id=40_001)
    new = zstandard.train_dictionary(1024, values, dict_id=40_002)
    (tmp_path / "transfer.zdict").write_bytes(old.as_bytes())
    dictionaries = packing.Dictionaries()
    dictionaries.add("acme", tmp_path)
    written = dictionaries.compress("acme", "transfer", values[0])
    assert written is not None
    (tmp_path / "transfer.2.zdict").write_bytes(new.as_bytes())
    later = packing.Dictionaries()
    later.add("acme", tmp_path)
    rewritten = later.compress("acme", "transfer", values[0])
    assert rewritten is not None
    assert zstandard.get_frame_parameters(rewritten, format=packing.FORMAT).dict_id == 40_002
    assert later.decompress(written) == values[0]  # the older still reads
    with pytest.raises(packing.UnknownDictionary, match="40002"):
        packing.Dictionaries().decompress(rewritten)
