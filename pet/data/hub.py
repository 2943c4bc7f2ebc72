"""Own data from Hugging Face ``datasets``: ``--data hf:NAME[:CONFIG]``.

``NAME`` goes to ``datasets.load_dataset`` — a hub name (online), a local folder of
parquet/CSV/JSON files (offline), or a folder written by ``Dataset.save_to_disk`` /
``DatasetDict.save_to_disk`` (read with ``datasets.load_from_disk``, offline). ``--split``
picks the split (default: the caller's — ``test`` for scoring, ``train`` for training data —
else the only one). A ``ClassLabel`` label column gives
label ids by name (``ClassLabel.names``; the stored integers become those names); any other
label column is used as text (``"0"``, ``"pos"``).

``datasets`` is an optional extra (``pip install -e ".[datasets]"``): it pulls pyarrow, which
nothing else here needs. Records are streamed in order (``iter_chunks`` reads them lazily), so a
large local dataset is scored chunk by chunk, from its memory-mapped Arrow files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

from ..errors import ConfigError, DataError, first_line

PREFIX = "hf:"


def is_hf(data: str | None) -> bool:
    return bool(data) and str(data).startswith(PREFIX)


def _datasets():
    try:
        import datasets
    except ImportError:
        raise ConfigError("--data hf:… needs the `datasets` package; fix: pip install -e \".[datasets]\" (or pip install datasets)") from None
    return datasets


def parse_hf(spec: str) -> tuple[str, str | None]:
    """``hf:NAME[:CONFIG]`` → (NAME, CONFIG or None). A local folder may itself contain ':'? No:
    the last ':' splits the config only when what follows has no path separator."""
    if not is_hf(spec):
        raise ConfigError(f"{spec}: not a Hugging Face dataset reference; fix: write hf:NAME[:CONFIG]")
    body = spec[len(PREFIX):]
    name, sep, config = body.rpartition(":")
    if not sep or "/" in config or not name:
        name, config = body, ""
    if not name:
        raise ConfigError(f"{spec}: no dataset name; fix: write hf:NAME[:CONFIG], e.g. hf:glue:sst2 or hf:./my_dataset")
    return name, config or None


class HubData:
    """One split of a Hugging Face dataset, read lazily: ``records()`` yields dicts with label
    values turned into label-name strings where the column is a ``ClassLabel``."""

    def __init__(self, spec: str, split: str | None, text_fields: Sequence[str], label_field: str | None, *, default_split: str = "test"):
        ds_mod = _datasets()
        name, config = parse_hf(spec)
        self.spec, self.name = spec, name
        try:
            p = Path(name)
            if p.is_dir() and ((p / "dataset_dict.json").is_file() or (p / "state.json").is_file()):  # save_to_disk
                loaded = ds_mod.load_from_disk(name)
            else:
                loaded = ds_mod.load_dataset(name, config)
        except (FileNotFoundError, ValueError, ConnectionError, OSError) as e:
            raise DataError(f"{spec}: cannot load ({first_line(e)}); fix: check the name (offline: a local folder saved by save_to_disk, or of parquet/CSV/JSON files)") from None
        if isinstance(loaded, ds_mod.DatasetDict):
            splits = list(loaded)
            if split is None:
                split = default_split if default_split in splits else (splits[0] if len(splits) == 1 else None)
                if split is None:
                    raise ConfigError(f"{spec}: no split '{default_split}'; splits present: {splits}; fix: pick one with --split")
            if split not in loaded:
                raise ConfigError(f"{spec}: no split '{split}'; splits present: {splits}; fix: --split one of them")
            ds = loaded[split]
        else:
            ds = loaded
            split = split or "all"
        self.dataset, self.split = ds, split
        cols = list(ds.column_names)
        for c in [*text_fields, *([label_field] if label_field else [])]:
            if c not in cols:
                raise DataError(f"{spec}: split '{split}': no column '{c}'; columns present: {cols}; fix: name an existing column in --text-field/--label-field")
        self.label_field = label_field
        feat = ds.features.get(label_field) if label_field else None
        self.label_names: list[str] | None = list(feat.names) if isinstance(feat, ds_mod.ClassLabel) else None

    def __len__(self) -> int:
        return len(self.dataset)

    def labels(self) -> list[str]:
        """Label ids: the ClassLabel names in order, else the sorted distinct values (numbers
        numerically), as :func:`pet.data.stream.scan_source` gives for files."""
        if self.label_names is not None:
            return list(self.label_names)
        if not self.label_field:
            return []
        from .tables import cell_text

        found = {t.strip() for t in map(cell_text, self.dataset.unique(self.label_field)) if t is not None and t.strip()}
        return sorted(found, key=lambda s: (len(s), s) if s.isdigit() else (0, s))

    def records(self, batch_size: int = 1024) -> Iterator[dict[str, Any]]:
        names = self.label_names
        n = 0
        for batch in self.dataset.iter(batch_size=batch_size):
            keys = list(batch)
            for i in range(len(batch[keys[0]]) if keys else 0):
                n += 1
                rec = {k: batch[k][i] for k in keys}
                if names is not None and self.label_field:
                    v = rec[self.label_field]
                    if v is None or not 0 <= int(v) < len(names):
                        raise DataError(f"{self.spec}: split '{self.split}': record {n}: label {v!r} is not a ClassLabel index; fix: correct the dataset")
                    rec[self.label_field] = names[int(v)]
                yield rec
