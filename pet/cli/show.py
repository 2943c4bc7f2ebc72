"""``pet show``: list tasks, or show a task's PVPs and how every label word tokenises."""

from __future__ import annotations

import argparse

from . import add_model_args


def register(sub) -> None:
    p = sub.add_parser(
        "show",
        help="list tasks, or show PVPs and label-word tokenisation",
        description="Without --task/--verbalizers: list the registered tasks. With them: each pattern, an encoded "
        "example cloze, and how every label word tokenises for --model's tokenizer.",
    )
    p.add_argument("--task", help="registered task")
    p.add_argument("--patterns", help="pattern JSON file")
    p.add_argument("--verbalizers", help="verbalizer JSON file")
    add_model_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data import list_tasks, load_task

    if not (args.task or args.patterns or args.verbalizers):
        print(f"{'task':<15} {'labels':>6}  {'metric':<9} test")
        for name in list_tasks():
            t = load_task(name)
            test = "subset" if t.test_subset else ("full" if t.has_split("test") else "none")
            print(f"{name:<15} {len(t.labels):>6}  {t.metric:<9} {test}")
        return 0
    from ..encoding import PVPEncoder
    from ..errors import ConfigError, ModelError
    from ..examples import Example
    from ..spec import PVP, load_patterns, load_verbalizers

    task = load_task(args.task) if args.task else None
    pats = load_patterns(args.patterns or task.patterns_path) if (args.patterns or task) else []
    verbs = load_verbalizers(args.verbalizers or task.verbalizers_path) if (args.verbalizers or task) else []
    for p in pats:
        print(f"pattern {p.id}: {p.template}" + (f"   [{p.source}]" if p.source else ""))
    if not args.model:
        if verbs:
            for v in verbs:
                print(f"verbalizer {v.id}: " + "; ".join(f"{k} → {', '.join(w)}" for k, w in v.labels.items()))
            print("(pass --model or set PET_MODEL to see how label words tokenise)")
        return 0
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(args.model)
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot load tokenizer '{args.model}': {str(e).splitlines()[0]}; fix: pass --model PATH") from None
    if not pats:
        raise ConfigError("pass --task or --patterns together with --verbalizers to see tokenisation")
    for v in verbs:
        enc = PVPEncoder(PVP(pats[0], v), tok)
        vt = enc.verbalizer_tokens
        print(f"verbalizer {v.id} ({vt.n_masks} mask{'s' if vt.n_masks > 1 else ''} with pattern {pats[0].id}):")
        for w in range(len(vt.words)):
            ids = vt.token_ids[w, : vt.lengths[w]].tolist()
            print(f"  {vt.labels[vt.word_label[w]]:>12}  {vt.words[w]!r:<16} → {tok.convert_ids_to_tokens(ids)}")
    sample = Example({f: f"<{f}>" for f in pats[0].fields})
    for p in pats:
        if verbs:
            e = PVPEncoder(PVP(p, verbs[0]), tok).encode([sample])[0]
            print(f"cloze {p.id}: {' '.join(tok.convert_ids_to_tokens(e.input_ids))}")
    return 0
