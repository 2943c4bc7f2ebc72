"""Safe file output: a reader never sees a half-written file, a saved folder is replaced by a
swap that always leaves a complete folder in place, and no output may overwrite an input.

* ``atomic_write_text`` / ``atomic_write_json``: temp file in the same folder + ``os.replace``.
* ``atomic_directory``: build a folder as ``.NAME.partial-<pid>-*`` and put it in place only on
  success. Replacing an existing folder (``overwrite=True``) is an atomic exchange of the two
  folders (``renameat2(RENAME_EXCHANGE)`` on Linux), so ``NAME`` is the complete old folder up to
  one instant and the complete new one after it. Where the exchange is not supported the old
  folder is first renamed to ``.NAME.old-<pid>-*``; a run killed between the two renames
  leaves the old folder there, and the next ``atomic_directory`` / ``recover_directory`` on the
  same path puts it back. Leftovers of dead processes are removed by the next run. Only a folder
  pet wrote is ever replaced: ``marker`` names a file it must hold, ``allowed`` accepts each of
  its entries (a folder holding anything else, e.g. the user's notes, is refused).
* ``check_output_not_input``: refuse an output path that is, links to, or hard-links to an input
  (or a folder output that contains an input).

Every failure a user causes (parent is a file, read-only location, …) is a one-line
``UsageError`` naming the path and the fix.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Iterator

from ..errors import UsageError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ----------------------------------------------------------------------------- paths


def _describe_os_error(path: Path, e: OSError, what: str) -> UsageError:
    """An OSError while writing ``path`` as a one-line UsageError with a fix."""
    reason = e.strerror or type(e).__name__
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = f"choose a writable location for the {what} or change the folder's permissions"
    elif e.errno in (errno.ENOTDIR, errno.EEXIST) and not path.is_dir():
        fix = f"a folder on the way to the {what} is a file; choose another path"
    elif e.errno == errno.EISDIR:
        fix = f"the {what} is an existing folder; give a file name"
    elif e.errno == errno.ENOSPC:
        fix = "free disk space or write elsewhere"
    else:
        fix = f"check the {what} path"
    return UsageError(f"{path}: cannot write the {what} ({reason}); fix: {fix}")


def check_parent_writable(path: str | Path, what: str = "output") -> None:
    """Fail early, in one line, when ``path`` cannot be created: a folder on the way is a file,
    or the nearest existing folder is not writable."""
    p = Path(path)
    anc = p.parent
    while not anc.exists() and anc != anc.parent:
        if anc.is_symlink():  # dangling link on the way
            raise UsageError(f"{anc}: is a broken symbolic link on the way to the {what}; fix: remove it or choose another path")
        anc = anc.parent
    if not anc.is_dir():
        raise UsageError(f"{anc}: is a file, not a folder, so the {what} {p} cannot be created there; fix: choose another path")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise UsageError(f"{anc}: folder is not writable, so the {what} {p} cannot be created; fix: choose a writable location")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output_not_input(output: str | Path | None, inputs: Iterable[str | Path | None], flag: str = "--output") -> None:
    """Refuse an output that would destroy an input.

    The output must not be an input itself, nor a symbolic or hard link to one (same device
    and inode), nor a folder containing an input (replacing it would delete the input), nor lie
    inside an input folder (a saved model or data folder is never written into). ``None`` entries are ignored so callers can pass optional flags as they are.
    """
    if output is None:
        return
    out = Path(output)
    out_res = out.resolve()
    for inp in inputs:
        if inp is None:
            continue
        ip = Path(inp)
        if not ip.exists():
            continue
        ip_res = ip.resolve()
        how = None
        if out_res == ip_res:
            how = "is a symbolic link to the input" if out.is_symlink() else "is the input"
        elif out.exists() and _same_file(out, ip):
            how = "is a symbolic link to the input" if out.is_symlink() else "is a hard link to the input"
        elif out_res in ip_res.parents:
            how = "is a folder that contains the input"
        elif ip.is_dir() and ip_res in out_res.parents:
            how = "lies inside the input folder"
        if how:
            raise UsageError(f"{flag} {out} {how} {ip}; writing there would overwrite or alter the input; fix: choose another {flag} path")


def check_output_file(output: str | Path, inputs: Iterable[str | Path | None] = (), flag: str = "--output") -> None:
    """Everything a command checks before doing any work for a file ``output``: it is not an
    input (nor a link to one), not an existing folder, and its folder can be created/written."""
    check_output_not_input(output, inputs, flag)
    p = Path(output)
    if p.is_dir():
        raise UsageError(f"{flag} {p} is a folder; fix: give a file name (e.g. {p / 'out.json'})")
    check_parent_writable(p, f"{flag} file")


# ----------------------------------------------------------------------------- files


@contextmanager
def atomic_output(path: str | Path, what: str = "output") -> Iterator[Any]:
    """A text handle on a temporary file next to ``path``; when the block ends without error the
    file is flushed, synced and renamed over ``path``; on any error it is removed and ``path`` is
    left as it was (nothing half-written ever carries the final name)."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{p}: is a folder; fix: give a file name for the {what}")
    check_parent_writable(p, what)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    except OSError as e:
        raise _describe_os_error(p, e, what) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            yield f
            try:
                f.flush()
                os.fsync(f.fileno())
            except OSError as e:
                raise _describe_os_error(p, e, what) from None
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, p)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise _describe_os_error(p, e, what) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str, what: str = "output") -> None:
    with atomic_output(path, what) as f:
        f.write(text)


def atomic_write_json(path: str | Path, data: Any, what: str = "output") -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", what)


# ----------------------------------------------------------------------------- folders

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_libc = None


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    global _libc
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return False
    try:
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = _libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM):
        return False  # file system or kernel without RENAME_EXCHANGE: use the two-rename swap
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def _fsync_path(path: str | Path) -> None:
    """Flush one file or folder to disk (best effort: file systems without fsync are skipped)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """Flush every file and folder of ``root`` to disk before it is put in place."""
    for dirpath, _, files in os.walk(root):
        for f in files:
            fp = os.path.join(dirpath, f)
            if not os.path.islink(fp):
                _fsync_path(fp)
        _fsync_path(dirpath)


_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>partial|old)-(?P<pid>\d+)-[^/]*$")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def leftovers(path: str | Path) -> list[Path]:
    """The ``.NAME.partial-*`` / ``.NAME.old-*`` folders beside ``path`` (any owner)."""
    final = Path(path)
    if not final.parent.is_dir():
        return []
    out = []
    for c in final.parent.iterdir():
        m = _LEFTOVER.match(c.name)
        if m and m.group("name") == final.name:
            out.append(c)
    return sorted(out)


def recover_directory(path: str | Path) -> list[Path]:
    """Finish or undo a replacement of ``path`` that a killed process left half done.

    If ``path`` is missing but an ``.NAME.old-*`` folder of a dead process exists (a kill between
    the two renames of the fallback swap), the newest one is renamed back to ``path``. Then the
    leftovers of dead processes are removed. Returns what was removed or restored.
    """
    final = Path(path)
    done: list[Path] = []
    dead = [c for c in leftovers(final) if not _pid_alive(int(_LEFTOVER.match(c.name).group("pid")))]
    if not final.exists() and not final.is_symlink():
        olds = sorted((c for c in dead if ".old-" in c.name), key=lambda c: c.stat().st_mtime)
        if olds:
            os.rename(olds[-1], final)
            done.append(olds[-1])
            dead.remove(olds[-1])
    for c in dead:
        if c.is_symlink() or c.is_file():
            c.unlink(missing_ok=True)
        else:
            shutil.rmtree(c, ignore_errors=True)
        done.append(c)
    return done


def _swap_fallback(new: Path, final: Path) -> None:
    """Replace ``final`` by ``new`` with two renames; the old folder waits as ``.NAME.old-*``
    (complete) between them, where ``recover_directory`` finds it after a kill."""
    old = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.old-{os.getpid()}-"))
    os.rename(final, old)  # onto our own empty folder: atomic on POSIX
    try:
        os.rename(new, final)
    except BaseException:
        if not final.exists():
            os.rename(old, final)  # put the old folder back
        raise
    _fsync_path(final.parent)
    shutil.rmtree(old, ignore_errors=True)


#: What ``allowed`` may be: a predicate on an entry's path relative to the folder (POSIX
#: separators; a folder's path ends with ``/``), or the collection of such paths.
Allowed = Callable[[str], bool] | Collection[str]


def unexpected_entry(folder: str | Path, allowed: Allowed) -> str | None:
    """The first entry of ``folder`` (walked top-down, sorted) that ``allowed`` does not accept,
    as a relative path (a folder's ends with ``/``); None when every entry is accepted. A symbolic
    link is never accepted (pet writes none), and the inside of a folder that is not accepted is
    not looked at."""
    ok = allowed if callable(allowed) else frozenset(allowed).__contains__
    root = Path(folder)
    todo = [root]
    while todo:
        d = todo.pop()
        for e in sorted(d.iterdir(), key=lambda e: e.name):
            rel = e.relative_to(root).as_posix()
            if e.is_symlink():
                return rel
            if e.is_dir():
                rel += "/"
                if not ok(rel):
                    return rel
                todo.append(e)
            elif not ok(rel):
                return rel
    return None


def check_output_folder(path: str | Path, overwrite: bool = False, marker: str | None = None, what: str = "output folder",
                        allowed: Allowed | None = None) -> None:
    """What :func:`atomic_directory` refuses, checked on its own — call it before long work so
    a bad output path fails at once, not after the work. ``marker`` and ``allowed``: see
    atomic_directory."""
    final = Path(path)
    if final.is_symlink():
        raise UsageError(f"{final}: the {what} is a symbolic link; fix: give the real folder path or another name")
    if final.exists() and not final.is_dir():
        raise UsageError(f"{final}: is a file, not a folder; fix: choose another path for the {what} or remove the file")
    check_parent_writable(final, what)
    if final.is_dir() and any(final.iterdir()):
        if not overwrite:
            raise UsageError(f"{final}: {what} exists and is not empty; fix: choose another path, remove it, or pass --overwrite")
        if marker is not None and not (final / marker).is_file():
            raise UsageError(f"{final}: has no {marker}, so it is not a {what} pet wrote and is never replaced; "
                             "fix: choose another path, or remove that folder yourself")
        if allowed is not None:
            try:
                extra = unexpected_entry(final, allowed)
            except OSError as e:
                raise UsageError(f"{final}: cannot list the {what} ({e.strerror}); it is never replaced unread; "
                                 "fix: choose another path or check its permissions") from None
            if extra is not None:
                raise UsageError(f"{final}: holds {extra!r}, which pet does not write in a {what}, so the folder is never "
                                 f"replaced (that would delete it); fix: choose another path, or move {extra!r} out of that folder")


@contextmanager
def atomic_directory(path: str | Path, overwrite: bool = False, marker: str | None = None, what: str = "output folder",
                     allowed: Allowed | None = None) -> Iterator[Path]:
    """Build a directory under a temporary name and put it in place only on success.

    An interrupted write leaves at most a hidden ``.NAME.partial-*`` folder (removed by the next
    run), never a directory at ``path`` that looks complete. ``overwrite=True`` replaces an
    existing non-empty folder by a swap (see the module doc); with ``marker`` (e.g.
    ``"pet_config.json"``) only a folder holding that file may be replaced, so ``--overwrite``
    never deletes a folder that is not a saved one; with ``allowed`` (a predicate on relative
    paths, or the set of them: see :func:`unexpected_entry`) only a folder whose every entry is
    accepted may be replaced, so a file the user put there is never deleted.
    """
    final = Path(path)
    check_output_folder(final, overwrite, marker, what, allowed)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        restored = recover_directory(final)
    except OSError as e:
        raise _describe_os_error(final, e, what) from None
    if restored:  # a folder an interrupted swap left aside may be back at ``path``
        check_output_folder(final, overwrite, marker, what, allowed)
    try:
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.partial-{os.getpid()}-"))
    except OSError as e:
        raise _describe_os_error(final, e, what) from None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        _fsync_tree(tmp)
        if final.exists():
            if _exchange(tmp, final):
                # ``final`` is now the new folder; ``tmp`` holds the old one
                _fsync_path(final.parent)
                shutil.rmtree(tmp, ignore_errors=True)
                return
            _swap_fallback(tmp, final)
        else:
            os.replace(tmp, final)
        _fsync_path(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
