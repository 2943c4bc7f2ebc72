"""PET-family cells split by split: the nine models, their ensemble, both students, and the rivals.

Reads a report's `rows.csv` (no model run) and prints one markdown row per task × seed on which
PET or pet-setfit-paper has a final row: the range of the PVP models, their ensemble, PET's
distilled classifier, the SetFit student of pet-setfit-paper, and on the same split SetFit
(paper), prompt-ft and prompt-ft-lmbff; then each PET-family student minus SetFit (paper) and the
cells' wall times. Per-split numbers are readings, not results: a result needs ≥ 3 seeds.

    python benchmarks/pet_splits.py benchmarks/results/flagship/report/rows.csv
"""

from __future__ import annotations

import argparse

import pandas as pd

RIVALS = ("setfit-paper", "prompt-ft", "prompt-ft-lmbff")
TASKS = ("sst2", "sst5", "mr", "cr", "mpqa", "subj", "trec", "rte")


def _pct(x: float | None) -> str:
    return "–" if x is None or pd.isna(x) else f"{100 * x:.1f}"


def _diff(a: float | None, b: float | None) -> str:
    if a is None or b is None or pd.isna(a) or pd.isna(b):
        return "–"
    d = 100 * (a - b)
    return f"{d:+.1f}".replace("-", "−")


def _minutes(s: float | None) -> str:
    return "–" if s is None or pd.isna(s) else f"{s / 60:.0f}"


def split_table(rows: pd.DataFrame) -> str:
    rows = rows[rows["selected"].fillna(True).astype(bool)]
    final = rows[rows["final"].astype(bool)]
    score = final.groupby(["task", "seed", "method"])["score"].first()
    cell = final.groupby(["task", "seed", "method"])["cell_seconds"].first()
    family = rows[rows["method"].isin(["pet", "pet-setfit-paper"])]
    lines = [
        "| task | seed | PVP models | ensemble | PET | pet-setfit-paper | SetFit (paper) | prompt-ft "
        "| prompt-ft-lmbff | PET − SetFit (paper) | psp − SetFit (paper) | cell min (PET / psp) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = {t: i for i, t in enumerate(TASKS)}
    splits = sorted(
        {(t, s) for t, s in zip(family["task"], family["seed"])}, key=lambda ts: (order.get(ts[0], 99), ts)
    )
    for task, seed in splits:
        f = family[(family["task"] == task) & (family["seed"] == seed)]
        pvp = f[f["stage"] == "pvp"].drop_duplicates("key")["score"]
        ens = f[f["stage"] == "ensemble"]["score"]

        def get(series: pd.Series, method: str) -> float | None:
            return series.get((task, seed, method))

        pet, psp, ref = get(score, "pet"), get(score, "pet-setfit-paper"), get(score, "setfit-paper")
        lines.append(
            f"| {task} | {seed} | {_pct(pvp.min())}–{_pct(pvp.max())} | {_pct(ens.iloc[0] if len(ens) else None)} "
            f"| {_pct(pet)} | {_pct(psp)} | " + " | ".join(_pct(get(score, m)) for m in RIVALS)
            + f" | {_diff(pet, ref)} | {_diff(psp, ref)} "
            f"| {_minutes(get(cell, 'pet'))} / {_minutes(get(cell, 'pet-setfit-paper'))} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", help="a report's rows.csv (pet report <store> writes it)")
    args = ap.parse_args()
    print(split_table(pd.read_csv(args.rows, low_memory=False)))


if __name__ == "__main__":
    main()
