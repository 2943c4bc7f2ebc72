"""What every `pet` command shares: `--help` ends with real examples (each one parses), long
commands take `--threads` and `--no-progress`, and progress follows one rule (a bar with a total
on a terminal, plain lines otherwise, nothing with --no-progress). Also `pet.utils.threads`."""

from __future__ import annotations

import io
import shlex
import signal
import subprocess
import sys

import pytest
import torch

from pet.cli import build_parser, main
from pet.cli.train import train_parser
from pet.methods import available_methods
from pet.utils import threads
from pet.utils.progress import progress_mode, track

#: commands that run a model: they take --threads
MODEL_COMMANDS = {"zero-shot", "train", "predict", "search-verbalizer", "compare-prompts", "bench"}
#: commands with a long loop: they take --no-progress
LONG_COMMANDS = {"zero-shot", "train", "predict", "compare-prompts", "bench"}


def _subparsers():
    parser = build_parser()
    (action,) = [a for a in parser._actions if a.dest == "command"]
    return action.choices


def test_the_command_sets_name_real_commands():
    names = set(_subparsers())
    assert MODEL_COMMANDS | LONG_COMMANDS | {"validate", "show", "report"} <= names


@pytest.mark.parametrize("name", sorted(set(_subparsers()) | {"train --method pet"}))
def test_help_ends_with_examples_that_parse(name):
    cmd, _, rest = name.partition(" ")
    parser = train_parser(rest.split()[-1]) if cmd == "train" and rest else (train_parser(None) if cmd == "train" else _subparsers()[cmd])
    text = parser.format_help().rstrip()
    head, sep, block = text.rpartition("\nexamples:\n")
    assert sep, f"`pet {name} --help` has no examples section"
    examples = [x.strip() for x in block.splitlines()]
    assert 2 <= len(examples) <= 3 and all(x.startswith(f"pet {cmd} ") for x in examples), examples
    for line in examples:  # every example is a command line `pet` accepts (flags, types, choices)
        tokens = shlex.split(line)[1:]
        if cmd == "train":
            method = tokens[tokens.index("--method") + 1]
            train_parser(method).parse_args(tokens[1:])
        else:
            args, extra = build_parser().parse_known_args(tokens)
            assert not extra and args.func, line


@pytest.mark.parametrize("name", sorted(MODEL_COMMANDS))
def test_model_commands_take_threads_and_long_ones_no_progress(name):
    parser = train_parser("prompt-ft") if name == "train" else _subparsers()[name]
    flags = {s for a in parser._actions for s in a.option_strings}
    assert "--threads" in flags
    assert ("--no-progress" in flags) == (name in LONG_COMMANDS)


@pytest.mark.parametrize("method", available_methods())
def test_every_methods_train_parser_builds_without_flag_clashes(method):
    assert "--threads" in train_parser(method).format_help()  # argparse raises on a clash


def test_threads_flag_is_applied_and_range_checked(tiny_bert_dir, tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("text,label\ngood film,1\nbad film,0\n")
    (tmp_path / "p.json").write_text('{"patterns": [{"id": "p", "template": "{text_a} It was {mask}."}]}')
    (tmp_path / "v.json").write_text('{"verbalizers": [{"id": "v", "labels": {"0": ["bad"], "1": ["good"]}}]}')
    argv = ["zero-shot", "--data", str(data), "--text-field", "text", "--label-field", "label", "--model", tiny_bert_dir,
            "--patterns", str(tmp_path / "p.json"), "--verbalizers", str(tmp_path / "v.json")]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert main([*argv, "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    capsys.readouterr()
    assert main([*argv, "--threads", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "--threads" in err and "fix:" in err and len(err.splitlines()) == 1


def test_default_threads_leaves_the_cores_other_pet_runs_use(monkeypatch):
    monkeypatch.setattr(threads, "cpu_count", lambda: 8)
    monkeypatch.setattr(threads, "other_pet_processes", lambda: 3)
    assert threads.default_threads() == 5
    monkeypatch.setattr(threads, "other_pet_processes", lambda: 12)
    assert threads.default_threads() == 1  # never fewer than one


def test_apply_threads_sets_torch_and_caps_the_default(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert threads.apply_threads(3) == 3 and torch.get_num_threads() == 3
        monkeypatch.setattr(threads, "default_threads", lambda: 8)
        torch.set_num_threads(2)
        assert threads.apply_threads(None) == 2  # OMP_NUM_THREADS / the caller's setting is a ceiling
        monkeypatch.setattr(threads, "default_threads", lambda: 1)
        assert threads.apply_threads(None) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    from pet.errors import UsageError

    with pytest.raises(UsageError, match="at least 1"):
        threads.apply_threads(0)


def test_pet_processes_finds_a_running_pet_command():
    assert threads._is_pet_command(["/venv/bin/pet", "train"]) and threads._is_pet_command(["python3", "-m", "pet", "predict"])
    assert threads._is_pet_command(["python", "/venv/bin/pet", "bench"])
    assert not threads._is_pet_command(["python", "-m", "pytest"]) and not threads._is_pet_command(["petunia"]) and not threads._is_pet_command([])
    proc = subprocess.Popen(["bash", "-c", "exec -a pet sleep 30"])  # a process whose argv[0] is `pet`
    try:
        for _ in range(50):  # until exec has replaced bash's command line
            if proc.pid in threads.pet_processes():
                break
            subprocess.run(["sleep", "0.1"])
        assert proc.pid in threads.pet_processes()
        proc.send_signal(signal.SIGSTOP)  # a stopped run uses no core: not counted
        for _ in range(50):
            if proc.pid not in threads.pet_processes():
                break
            subprocess.run(["sleep", "0.1"])
        assert proc.pid not in threads.pet_processes()
        proc.send_signal(signal.SIGCONT)
    finally:
        proc.kill()
        proc.wait()
    assert proc.pid not in threads.pet_processes()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_rule_bar_on_a_terminal_lines_elsewhere_nothing_when_off():
    assert progress_mode(False, _Terminal()) == "bar" and progress_mode(False, io.StringIO()) == "lines"
    assert progress_mode(True, _Terminal()) == "off"
    chunks = [list(range(5))] * 8 + [[0]]  # 41 items
    tty = _Terminal()
    assert list(track(iter(chunks), 41, "predict", "bar", stream=tty)) == chunks
    assert "\r" in tty.getvalue() and "0/41 [" in tty.getvalue()  # a bar that knows its total
    log = io.StringIO()
    assert list(track(iter(chunks), 41, "predict", "lines", stream=log)) == chunks
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and 1 < len(lines) <= 10 and lines[-1] == "predict: 41/41 ex (100%)"
    assert all(x.startswith("predict: ") and "/41 ex (" in x for x in lines)
    off = io.StringIO()
    assert list(track(iter(chunks), 41, "predict", "off", stream=off)) == chunks and off.getvalue() == ""


def test_stdout_is_the_stream_progress_never_uses():
    assert progress_mode(False) == progress_mode(False, sys.stderr)


def test_bench_prints_the_reports_provenance_warnings_one_line_each(monkeypatch, tmp_path, capsys):
    """`pet bench` ends with the report: each note and provenance warning is one `note:` /
    `warning:` line on stderr (not a Python warnings block), as `pet report` prints them, and
    the report path goes to stdout."""
    import types
    import warnings

    from pet.bench import driver, executors
    from pet.bench import report as bench_report

    found = ["the headline rows come from 2 git commits (aaa, bbb): …; fix: re-run the cells at one commit",
             "3 headline rows were made from a working tree with uncommitted changes (git_dirty): …; fix: commit"]

    def fake_report(results, references=None, **kw):
        for w in found:
            warnings.warn(w, bench_report.ProvenanceWarning, stacklevel=2)
        return bench_report.Report(markdown="# report", output=tmp_path / "report", warnings=list(found), notes=list(noted))

    noted = ["task sst2: 2 rows of cell abc were left out (score: not a number)"]
    monkeypatch.setattr(driver, "run_experiment", lambda exp, **kw: types.SimpleNamespace(computed=1, already_done=0, results=tmp_path, ok=True))
    monkeypatch.setattr(executors, "make_executor", lambda *a, **kw: None)
    monkeypatch.setattr(bench_report, "build_report", fake_report)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["bench", "benchmarks/quick.yaml", "--threads", "1"]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [f"note: {n}" for n in noted] + [f"warning: {w}" for w in found]
    assert out.strip() == f"report: {tmp_path / 'report' / 'report.md'}"
    assert main(["bench", "benchmarks/quick.yaml", "--threads", "0"]) == 2  # range-checked like the other commands
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "--threads" in err and "fix:" in err and len(err.splitlines()) == 1
    before = torch.get_num_threads()
    try:  # without --threads: the free cores, but never above the caller's setting (OMP_NUM_THREADS)
        monkeypatch.setattr(threads, "default_threads", lambda: 8)
        torch.set_num_threads(1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert main(["bench", "benchmarks/quick.yaml"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
