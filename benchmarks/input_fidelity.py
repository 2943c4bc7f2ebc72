"""Full-file input fidelity: our encoder (``pet show --encode``) vs the LM-BFF and PET
reference re-implementations in ``tests/test_fidelity.py``, on EVERY test example (not a test;
the tests sample each file).

    python benchmarks/input_fidelity.py            # prints a Markdown table

For each LM-BFF manual template (and the auto templates whose spacing matters) and each PET
pattern checked, on the BERT WordPiece and RoBERTa BPE tokenizers of ../shared/tokenizers:
examples compared (all of them, at the source's own length: LM-BFF 128, or 256 for
MNLI/SNLI/RTE, with its sentence limits; PET 256), how many of them the source's truncation
cut, mismatches.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import test_fidelity as fid  # noqa: E402  (the reference implementations live with the tests)


def main() -> None:
    t0 = time.time()
    toks = {name: fid._tokenizer(name) for name in fid.TOKS}
    lines = ["| reference | task | pattern | tokenizer | compared | truncated | mismatches |", "|---|---|---|---|---|---|---|"]
    total = bad = 0
    jobs = [("LM-BFF", t, None) for t in fid.LMBFF_MANUAL] + [("LM-BFF", t, p) for t, p in fid.LMBFF_AUTO]
    for ref, task, pattern in jobs:
        for name, tok in toks.items():
            r = fid.lmbff_parity(task, tok, pattern=pattern, n=None)
            total += r["checked"]
            bad += len(r["mismatches"])
            label = pattern or f"manual ({fid.LMBFF_MANUAL[task][2].split(':')[0]})"
            lines.append(f"| {ref} | {task} | {label} | {name} | {r['checked']} | {r['truncated']} | {len(r['mismatches'])} |")
            print(lines[-1], flush=True)
    for task, pattern, pvp_id, split in fid.PET_CASES:
        for name, tok in toks.items():
            r = fid.pet_parity(task, pattern, pvp_id, split, tok, n=None)
            total += r["checked"]
            bad += len(r["mismatches"])
            lines.append(f"| PET | {task} | {pattern} (`{pvp_id}`) | {name} | {r['checked']} | {r['truncated']} | {len(r['mismatches'])} |")
            print(lines[-1], flush=True)
    lines.append(f"\n{total} encodings compared, {bad} mismatches, {time.time() - t0:.0f} s.")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
