"""``pet show``: list tasks; show a task's PVPs and how every label word tokenises; or, with
``--encode``, print exactly what the model sees for real examples (needs only a tokenizer)."""

from __future__ import annotations

import argparse
import json

from . import add_model_args, help_text
from .fields import add_field_args, field_map, label_column

EXAMPLES = (
    "pet show --task sst2 --tokenizer roberta-large",
    "pet show --patterns my_patterns.json --verbalizers my_verbalizers.json --tokenizer bert-base-uncased",
    "pet show --task rte --encode --split train --seed 13 --limit 2 --model roberta-large --data-dir pet-data",
)


def register(sub) -> None:
    from .args import positive_int, seed

    p = sub.add_parser(
        "show",
        help="list tasks, show PVPs and label-word tokenisation, or --encode examples",
        **help_text(
            "Without --task/--data/--patterns: list the registered tasks. With them: each pattern, an "
            "encoded example cloze, and how every label word tokenises. With --encode: one record per example of "
            "exactly what the model sees (input ids with special tokens, token types, mask positions, label-word ids).",
            *EXAMPLES),
    )
    src = p.add_argument_group("data (a registered task, or your own file)")
    src.add_argument("--task", help="registered task")
    src.add_argument("--data", help="your own CSV/TSV/JSONL(.gz) file instead of a task (with --encode)")
    add_field_args(src, label_default=None)
    src.add_argument("--split", default=None, help="split to encode (default: test)")
    src.add_argument("--seed", type=seed, default=None, help="seed folder for train/dev splits")
    src.add_argument("--limit", type=positive_int, default=None, help="encode only the first N examples (N >= 1)")
    p.add_argument("--patterns", help="pattern JSON file")
    p.add_argument("--verbalizers", help="verbalizer JSON file")
    p.add_argument("--pvps", nargs="+", help="PVP ids PATTERN:VERBALIZER (default: the task's defaults)")
    p.add_argument("--tokenizer", help="tokenizer folder (no weights needed) or hub name (default: --model's)")
    p.add_argument("--encode", action="store_true", help="print what the model sees for each example")
    p.add_argument("--format", choices=("table", "jsonl"), default=None, help="--encode output (default: table)")
    p.add_argument("--max-length", type=positive_int, default=None, help="token limit (default: the task's)")
    add_model_args(p)
    p.set_defaults(func=run)


#: flags that only --encode reads (argparse dest → flag)
ENCODE_ONLY = {"data": "--data", "text_field": "--text-field", "text_b_field": "--text-b-field", "label_field": "--label-field", "split": "--split",
               "seed": "--seed", "limit": "--limit", "format": "--format"}


def check_flags(args: argparse.Namespace) -> None:
    """Refuse flags this mode would ignore, so nothing is silently dropped."""
    from ..errors import ConfigError

    if args.task and args.data:
        raise ConfigError(f"--task {args.task} and --data {args.data}: give one of them; fix: drop --task to see your file, or drop --data")
    if not args.encode:
        given = [flag for dest, flag in ENCODE_ONLY.items() if getattr(args, dest) is not None]
        if given:
            raise ConfigError(f"{given[0]} is read only with --encode; fix: add --encode (and --tokenizer or --model), or drop {given[0]}")
    if args.pvps and not (args.task or args.patterns or args.encode):
        raise ConfigError("--pvps picks PVPs of a task or of --patterns/--verbalizers files; fix: add --task NAME or --patterns FILE --verbalizers FILE")


def pick(pats: list, verbs: list, ids: list[str] | None, task) -> tuple[list, list]:
    """The patterns and verbalizers ``--pvps`` names (each once, in order; ids checked like
    every command's), or all of them without ``--pvps``."""
    from ..errors import SpecError
    from ..prompts.spec import make_pvps

    if not ids:
        return pats, verbs
    if not verbs:
        raise SpecError("--pvps needs verbalizers; fix: add --verbalizers FILE (or --task NAME)")
    pvps = make_pvps(pats, verbs, ids)
    if task is not None:
        for p in pvps:
            p.check_labels(task.label_ids, f"task '{task.name}'")
    by_id = lambda items: list({x.id: x for x in items}.values())
    return by_id(p.pattern for p in pvps), by_id(p.verbalizer for p in pvps)


def run(args: argparse.Namespace) -> int:
    from ..data import list_tasks, load_task

    check_flags(args)
    if args.encode:
        return run_encode(args)
    if not (args.task or args.patterns or args.verbalizers):
        print(f"{'task':<15} {'labels':>6}  {'metric':<9} test")
        for name in list_tasks():
            t = load_task(name)
            test = "subset" if t.test_subset else ("full" if t.has_split("test") else "none")
            print(f"{name:<15} {len(t.labels):>6}  {t.metric:<9} {test}")
        return 0
    from ..prompts.encoding import DEFAULT_MAX_LENGTH, PVPEncoder, load_tokenizer
    from ..errors import ConfigError
    from ..examples import Example
    from ..prompts.spec import PVP, load_patterns, load_verbalizers

    task = load_task(args.task) if args.task else None
    pats = load_patterns(args.patterns or task.patterns_path) if (args.patterns or task) else []
    verbs = load_verbalizers(args.verbalizers or task.verbalizers_path) if (args.verbalizers or task) else []
    pats, verbs = pick(pats, verbs, args.pvps, task)
    for p in pats:
        print(f"pattern {p.id}: {p.template}   truncation: {json.dumps(p.truncation.to_spec())}" + (f"   [{p.source}]" if p.source else ""))
    name = args.tokenizer or args.model
    if not name:
        if verbs:
            for v in verbs:
                print(f"verbalizer {v.id}: " + "; ".join(f"{k} → {', '.join(w)}" for k, w in v.labels.items()))
            print("(pass --tokenizer or --model, or set PET_MODEL, to see how label words tokenise)")
        return 0
    tok = load_tokenizer(name)
    if not pats:
        raise ConfigError("pass --task or --patterns together with --verbalizers to see tokenisation")
    max_length = args.max_length or (task.max_length if task else DEFAULT_MAX_LENGTH)
    for v in verbs:
        enc = PVPEncoder(PVP(pats[0], v), tok, max_length=max_length)
        vt = enc.verbalizer_tokens
        print(f"verbalizer {v.id} ({vt.n_masks} mask{'s' if vt.n_masks > 1 else ''} with pattern {pats[0].id}):")
        for w in range(len(vt.words)):
            ids = vt.token_ids[w, : vt.lengths[w]].tolist()
            print(f"  {vt.labels[vt.word_label[w]]:>12}  {vt.words[w]!r:<16} → {tok.convert_ids_to_tokens(ids)}")
    for p in pats:
        if verbs:
            sample = Example({f: f"<{f}>" for f in p.fields})
            e = PVPEncoder(PVP(p, verbs[0]), tok, max_length=max_length).encode([sample])[0]
            tokens = tok.convert_ids_to_tokens(e.input_ids)
            for i in e.soft_positions:
                tokens[i] = SOFT_MARK
            line = " ".join(tokens)
            for f in p.fields:  # the placeholder's pieces (`< text _ a >`) back as one `<text_a>`
                for text in (f" <{f}>", f"<{f}>"):
                    line = line.replace(" ".join(tok.tokenize(text)), f"<{f}>")
            print(f"cloze {p.id}: {line}" + (f"   ({SOFT_MARK} = a soft-prompt position)" if e.soft_positions else ""))
    return 0


#: how a soft-prompt position is shown: the model puts a trained embedding there, not the
#: placeholder id's (the unknown token's, or the init word's)
SOFT_MARK = "{soft}"


def run_encode(args: argparse.Namespace) -> int:
    from ..data import load_examples, load_task, own_data_task, task_pvps
    from ..prompts.encoding import encode_records, load_tokenizer
    from ..errors import ConfigError

    if bool(args.task) == bool(args.data):
        raise ConfigError("--encode needs exactly one of --task NAME or --data FILE; fix: e.g. --task sst2, or --data FILE --text-field COLUMN")
    name = args.tokenizer or args.model
    if not name:
        raise ConfigError("--encode needs a tokenizer; fix: pass --tokenizer DIR (a folder with no weights is enough) or --model")
    if args.data:
        pvps = task_pvps(None, args.patterns, args.verbalizers, args.pvps, include_soft=True)
        # the verbalizer's labels: a file may hold only some of them; a label without words is a row error
        task, examples = own_data_task(args.data, field_map(args), label_column(args), labels=pvps[0].verbalizer.label_ids)
        for p in pvps:
            p.check_labels(task.label_ids, str(args.data))
    else:
        task = load_task(args.task)
        examples = load_examples(task, args.split or "test", args.data_dir, seed=args.seed)
        pvps = task_pvps(task, args.patterns, args.verbalizers, args.pvps, include_soft=True)
    if args.limit is not None:
        examples = examples[: args.limit]
    tok = load_tokenizer(name)
    max_length = args.max_length or task.max_length
    for pvp in pvps:
        records = encode_records(pvp, tok, examples, max_length=max_length, labels=task.label_ids)
        if (args.format or "table") == "jsonl":
            for r in records:
                print(json.dumps({"pvp": pvp.id, **r}, ensure_ascii=False))
        else:
            print(format_table(pvp, records, max_length))
    return 0


def format_table(pvp, records: list[dict], max_length: int | None = None) -> str:
    """The readable form: per example its fields, then token / id / type, masks marked."""
    limit = f", max_length {max_length}" if max_length else ""
    out = [f"PVP {pvp.id}: {pvp.pattern.template}   (truncation {json.dumps(pvp.pattern.truncation.to_spec())}{limit})"]
    if records:
        words = "; ".join(f"{lab} → {ids}" for lab, ids in records[0]["label_token_ids"].items())
        out.append(f"label words: {words}")
    for r in records:
        out.append(f"— {r['guid']} (label {r['label']}): " + " | ".join(f"{k}={v!r}" for k, v in r["fields"].items()))
        masks = set(r["mask_positions"])
        types = r["token_type_ids"]
        soft = set(r.get("soft_positions", ()))
        cells = [
            f"{'*' if i in masks else ''}{SOFT_MARK if i in soft else t}:{tid}" + (f"/{types[i]}" if types is not None else "")
            for i, (t, tid) in enumerate(zip(r["tokens"], r["input_ids"]))
        ]
        out.append("  " + " ".join(cells))
    has_soft = any(r.get("soft_positions") for r in records)
    out.append("(token:id" + ("/type" if records and records[0]["token_type_ids"] is not None else "") + "; * = mask"
               + (f"; {SOFT_MARK} = a soft-prompt position: the model puts a trained embedding there, the id is a placeholder" if has_soft else "")
               + ")")
    return "\n".join(out)
