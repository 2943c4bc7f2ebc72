"""The `setfit` library run directly, at its defaults, on an LM-BFF split — the reference that
`pet train --method setfit` must reproduce (issue 22).

    OMP_NUM_THREADS=1 python benchmarks/setfit_library_check.py --data-dir ../shared/data \
        --model ../shared/models/all-minilm-l6-v2 --task SST-2 --seed 13

Reads `<task>/16-<seed>/train.tsv` and `<task>/test.tsv` (SST-2's TSV layout: `sentence`,
`label`) or, for the LM-BFF CSV tasks (`cr`, `mr`, `mpqa`, `subj`, `sst-5`, `trec`), the header-less
`train.csv` / `test.csv` (`label,text`), trains `SetFitModel` with `setfit.Trainer` and `TrainingArguments()` untouched (its
own seed, 42, unless --train-seed is given; its own pair sampling unless --num-iterations is), and prints the test
accuracy, the number of contrastive steps and the wall time.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import pandas as pd


def _read(path: Path) -> pd.DataFrame:
    """SST-2's TSV (header, `sentence`, `label`, unquoted) or LM-BFF's CSV (no header: label, text)."""
    if path.suffix == ".tsv":
        return pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, dtype={"label": int}, keep_default_na=False)
    return pd.read_csv(path, header=None, names=["label", "sentence"], dtype={"label": int, "sentence": str}, keep_default_na=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--task", default="SST-2")
    ap.add_argument("--seed", type=int, default=13, help="the LM-BFF split")
    ap.add_argument("--train-seed", type=int, default=None, help="setfit's training seed (default: its own, 42)")
    ap.add_argument("--num-iterations", type=int, default=None,
                    help="setfit's num_iterations (pairs per example and round; default: its own, None = oversampling; "
                         "the SetFit paper's R = 20)")
    a = ap.parse_args()
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    root = Path(a.data_dir) / a.task
    ext = "tsv" if (root / "test.tsv").exists() else "csv"
    train, test = _read(root / f"16-{a.seed}" / f"train.{ext}"), _read(root / f"test.{ext}")
    t0 = time.perf_counter()
    model = SetFitModel.from_pretrained(a.model)
    out = tempfile.mkdtemp(prefix="setfit-check-")  # setfit's default output_dir is ./checkpoints
    changed = {k: v for k, v in (("seed", a.train_seed), ("num_iterations", a.num_iterations)) if v is not None}
    args = TrainingArguments(output_dir=out, **changed)
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_dict({"text": list(train.sentence), "label": list(train.label)}))
    trainer.train()
    steps = trainer.st_trainer.state.global_step
    pred = model.predict(list(test.sentence))
    acc = float((pd.Series(list(pred)).astype(int).values == test.label.values).mean())
    print(f"{a.task} 16-{a.seed}: setfit library accuracy {acc:.4f} on {len(test)} test examples; "
          f"{steps} contrastive steps; {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
