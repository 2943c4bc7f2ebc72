"""The flags that name the columns of a user's own data, spelled alike in every command that
reads a file (``train``, ``zero-shot``, ``predict``, ``show --encode``, ``search-verbalizer``)::

    --text-field review                      {text_a} is the column "review" (default: "text")
    --text-field premise --text-field hyp    {text_a} and {text_b}
    --text-field premise --text-b-field hyp  the same
    --text-field question=q                  a pattern's {question} is the column "q"
    --label-field stars                      the gold label (default: "label")
"""

from __future__ import annotations

import argparse

from ..data.owndata import parse_field_map
from ..errors import UsageError

TEXT_HELP = "column for {{text_a}} (default: {}); repeat it for {{text_b}}, or give NAME=COLUMN for a pattern's {{NAME}}"
TEXT_B_HELP = "column for {text_b} (the same as a second --text-field)"


#: the column flags (argparse dest → flag)
FLAGS = {"text_field": "--text-field", "text_b_field": "--text-b-field", "label_field": "--label-field"}


def add_field_args(group, *, label: bool = True, label_default: str | None = "label", text_default: str = "text") -> None:
    """Add ``--text-field`` and ``--text-b-field`` (``text_default`` says in the help what is read
    without them), and with ``label`` ``--label-field`` (read as ``label_default`` when not given;
    None: the data has labels only where the flag names them)."""
    group.add_argument("--text-field", action="append", metavar="[NAME=]COLUMN", help=TEXT_HELP.format(text_default))
    group.add_argument("--text-b-field", metavar="COLUMN", help=TEXT_B_HELP)
    if label:
        group.add_argument("--label-field", metavar="COLUMN",
                           help=f"column of the gold labels (default: {label_default})" if label_default else
                           "column of the gold labels (optional)")
        group.set_defaults(label_field_default=label_default)


def field_map(args: argparse.Namespace) -> dict[str, str]:
    """Template field → column from the parsed flags (:func:`pet.data.owndata.parse_field_map`)."""
    return parse_field_map(args.text_field, args.text_b_field)


def label_column(args: argparse.Namespace) -> str | None:
    """The label column: ``--label-field``, else the command's default."""
    return args.label_field if args.label_field is not None else args.label_field_default


def refuse_without_data(args: argparse.Namespace, also: dict[str, str] | None = None) -> None:
    """The column flags (and ``also``, more dest → flag) read your own ``--data``; a registered
    task names its own columns and files, so with one they would be ignored: refused instead."""
    given = [flag for dest, flag in {**FLAGS, **(also or {})}.items() if getattr(args, dest, None) is not None]
    if given and not getattr(args, "data", None):
        raise UsageError(f"{given[0]} is read only with your own --data (a registered task names its own columns and files); "
                         f"fix: drop {given[0]}, or give --data FILE")
