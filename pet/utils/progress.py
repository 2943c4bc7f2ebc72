"""One progress rule for every long command.

* on a terminal: a tqdm bar with a total (rows, steps);
* not on a terminal (a log file, a pipe, a CI job): no bars and no carriage returns; a stream the
  command drives itself (``pet predict``, ``pet zero-shot``) prints one plain line per 10 %;
* ``--no-progress``: nothing.

    mode = progress_mode(args.no_progress)          # "bar" | "lines" | "off"
    for chunk in track(chunks, total=n, desc="predict", mode=mode): ...
    fit(..., progress=mode == "bar")                # library loops: a bar on a terminal only
"""

from __future__ import annotations

import sys
from typing import IO, Iterable, Iterator, Sized

#: a "lines" progress prints when another this many percent of the total is done
LINE_STEP_PERCENT = 10


def progress_mode(disabled: bool = False, stream: IO | None = None) -> str:
    """``"off"`` when disabled, ``"bar"`` when ``stream`` (default stderr) is a terminal, else ``"lines"``."""
    if disabled:
        return "off"
    stream = sys.stderr if stream is None else stream
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        tty = False
    return "bar" if tty else "lines"


def track(chunks: Iterable[Sized], total: int | None, desc: str, mode: str, stream: IO | None = None, unit: str = "ex") -> Iterator:
    """Yield ``chunks`` unchanged, counting ``len(chunk)`` items as done when the consumer asks
    for the next chunk (so the count follows work finished, not work read)."""
    stream = sys.stderr if stream is None else stream
    if mode == "bar":
        from tqdm.auto import tqdm

        with tqdm(total=total, desc=desc, unit=unit, file=stream, leave=False, dynamic_ncols=True) as bar:
            for chunk in chunks:
                yield chunk
                bar.update(len(chunk))
        return
    done, shown = 0, 0
    for chunk in chunks:
        yield chunk
        done += len(chunk)
        if mode == "lines" and total:
            pct = min(100, done * 100 // total)
            if pct >= shown + LINE_STEP_PERCENT or (pct == 100 and shown < 100):
                shown = pct - pct % LINE_STEP_PERCENT if pct < 100 else 100
                print(f"{desc}: {done}/{total} {unit} ({pct}%)", file=stream, flush=True)
