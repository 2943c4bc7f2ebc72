"""``pet search-verbalizer``: automatic label words for a pattern (LM-BFF / PETAL), written as a
verbalizer file with each word's score and the procedure in its ``source`` field."""

from __future__ import annotations

import argparse
import sys

from . import add_model_args, add_run_args, help_text, require_model, start_run
from .args import positive_int, seed
from .fields import add_field_args, field_map, label_column, refuse_without_data

EXAMPLES = (
    "pet search-verbalizer --task sst2 --pattern it-was --model roberta-large --data-dir data/ --output verbalizers/sst2-searched.json",
    "pet search-verbalizer --data reviews.csv --text-field review --label-field stars --patterns p.json --pattern a --method petal --model roberta-large --output v.json",
    "pet search-verbalizer --data hf:./my_dataset --text-field sentence --label-field label --patterns p.json --pattern a --model roberta-large --output v.json",
)


def register(sub) -> None:
    p = sub.add_parser(
        "search-verbalizer",
        help="search label words for a pattern on the labelled split (LM-BFF or PETAL)",
        **help_text("Search label words for one pattern from the few-shot split's train (and dev) examples only, "
                    "and write a verbalizer file usable with --verbalizers (docs/search.md).", *EXAMPLES),
    )
    src = p.add_argument_group("data (a registered task, or your own file)")
    src.add_argument("--task", help="registered task name (see `pet show --tasks`)")
    src.add_argument("--data", help="your own CSV/TSV/JSONL file or hf:NAME[:CONFIG] (K per class drawn with --seed; no dev: cross-validation re-ranking)")
    src.add_argument("--split", help="split of an hf: --data (default: train, else its only split)")
    add_field_args(src)
    src.add_argument("--shots", type=positive_int, default=16, help="labelled examples per class (default 16)")
    src.add_argument("--seed", type=seed, default=13, help="split seed (default 13)")
    p.add_argument("--pattern", required=True, help="id of the pattern to search label words for")
    p.add_argument("--patterns", help="pattern JSON file (default: the task's; required with --data)")
    p.add_argument("--method", choices=["lmbff", "petal"], default="lmbff", help="search criterion (default lmbff)")
    p.add_argument("--words-per-label", type=positive_int, default=1, help="label words per label, at most --candidates (default 1)")
    p.add_argument("--candidates", type=positive_int, default=100, help="candidate words per label (default 100)")
    p.add_argument("--beam", type=positive_int, default=100, help="assignments kept while growing them (lmbff, default 100)")
    p.add_argument("--rerank", type=positive_int, default=10, help="best assignments re-ranked on dev / by cross-validation (lmbff, default 10)")
    p.add_argument("--folds", type=positive_int, default=4, help="cross-validation folds when there is no dev data (default 4)")
    p.add_argument("--add-words", nargs="+", default=[], help="extra candidate words (multi-token words are scored with several masks)")
    p.add_argument("--id", dest="verbalizer_id", help="id of the written verbalizer: no ':' or spaces (default search-METHOD)")
    p.add_argument("--max-length", type=positive_int, default=None, help="token limit (default: the task's)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--output", required=True, help="verbalizer JSON file to write")
    add_model_args(p)
    add_run_args(p, progress=False)  # the search scores K x labels examples: no long loop to show
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.hub import is_hf
    from ..data.stream import Source
    from ..errors import ConfigError
    from ..evaluation.search import check_verbalizer_id, check_words_per_label, search_for_data, search_for_task
    from ..utils.io import check_output_file

    if bool(args.task) == bool(args.data):
        raise ConfigError("pass exactly one of --task NAME or --data FILE; fix: e.g. --task sst2, or --data FILE --text-field COLUMN --label-field COLUMN")
    refuse_without_data(args)
    check_verbalizer_id(args.verbalizer_id, "--id")
    check_words_per_label(args.words_per_label, args.candidates, ("--words-per-label", "--candidates"))
    check_output_file(args.output, [None if is_hf(args.data) else args.data, args.patterns, args.model])
    if args.split and not is_hf(args.data):
        raise ConfigError("--split picks a split of an hf: --data; fix: drop --split, or give --data hf:NAME")
    start_run(args)
    kw = dict(method=args.method, words_per_label=args.words_per_label, candidates=args.candidates, beam=args.beam, rerank=args.rerank,
              folds=args.folds, extra_words=args.add_words, batch_size=args.batch_size, verbalizer_id=args.verbalizer_id, device=args.device)
    if args.max_length:
        kw["max_length"] = args.max_length
    if args.data:
        if not args.patterns:
            raise ConfigError("--data needs --patterns FILE (the pattern to search label words for); fix: pass --patterns")
        result = search_for_data(Source(args.data, args.split, "train"), field_map(args), label_column(args), args.patterns, args.pattern,
                                 require_model(args), k=args.shots, seed=args.seed, **kw)
        task = None
    else:
        result = search_for_task(args.task, args.pattern, require_model(args), data_dir=args.data_dir, k=args.shots, seed=args.seed,
                                 patterns=args.patterns, **kw)
        task = args.task
    result.save(args.output, task=task)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(format_result(result))
    print(f"wrote {args.output}")
    return 0


def format_result(result) -> str:
    pr = result.procedure
    out = [f"{pr['method']} · pattern {pr['pattern']} · {pr['train_examples']} train, {pr['dev_examples']} dev · model {pr['model']}",
           f"score: {pr['score']}"]
    for label, words in result.scores.items():
        out.append(f"  {label}: " + ", ".join(f"{w} ({s:.3f})" for w, s in words.items()))
    for i, r in enumerate(result.ranking[:5]):
        acc = ", ".join(f"{k} {v}" for k, v in r.items() if k != "words")
        out.append(f"  #{i + 1} {r['words']}  {acc}")
    return "\n".join(out)
