"""Train the zstd dictionaries partner packages ship (partnersync/packing.py):
`python -m cli.bench.dictionaries`.

One dictionary per kind of the bench's mix (cli/bench/mix.py), trained on the values the
store writes for it (record, transitions and the partner's JSON), and one per command kind
(`cmd-<kind>.zdict`, the journal entry's JSON), from a seed the bench
does not use, so `bench --scale` measures them on values they were not trained on. Kinds
without one are deflated. A new file for a kind goes beside the old (`<kind>.2.zdict`):
values written with the old one must still read.
"""

from __future__ import annotations

import sys
import zlib
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import zstandard

from cli.bench import mix
from partnersync import commands, store

SIZE = 4096  # bytes per dictionary: larger ones gained < 2% on the mix
SAMPLES = 24_000
ROOT = Path(__file__).resolve().parents[2]


def dict_id(partner: str, kind: str) -> int:
    """A stable id below 65,536 (2 bytes in a frame), checked unique among the repository's
    dictionaries by `main`."""
    return 256 + zlib.crc32(f"{partner}:{kind}".encode()) % (65_536 - 256)


def main() -> int:
    values: dict[tuple[str, str], list[bytes | bytearray | memoryview]] = defaultdict(list)
    start = mix.now() - timedelta(days=90)
    for sample in mix.samples(SAMPLES, start, timedelta(days=90), seed=1):
        history = []
        for record, transition in mix.writes(sample):
            history.append(transition)
            values[(sample.partner, sample.kind)].append(store.packed(record, history))
        command = mix.command_record(sample)
        if command is not None:  # the journal entry's JSON (commands.encode)
            values[(sample.partner, f"cmd-{command.kind}")].append(commands.encode(command))
    taken: dict[int, str] = {}
    for path in ROOT.glob("partners/*/dictionaries/*.zdict"):
        owner = f"{path.parent.parent.name}:{path.name.partition('.')[0]}"
        taken[zstandard.ZstdCompressionDict(path.read_bytes()).dict_id()] = owner
    for (partner, kind), found in sorted(values.items()):
        wanted = dict_id(partner, kind)
        if taken.get(wanted, f"{partner}:{kind}") != f"{partner}:{kind}":
            print(
                f"dictionary id {wanted} of {partner}:{kind} is {taken[wanted]}'s", file=sys.stderr
            )
            return 1
        trained = zstandard.train_dictionary(SIZE, found, dict_id=wanted)
        path = ROOT / "partners" / partner / "dictionaries" / f"{kind}.zdict"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(trained.as_bytes())
        print(f"{path.relative_to(ROOT)}: {len(found)} values", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
