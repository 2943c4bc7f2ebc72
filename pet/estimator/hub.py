"""Hugging Face Hub transport for saved classifier folders: download a repo through the HF cache,
upload a saved folder. Every failure is a one-line ``ModelError`` with a fix.

* :func:`hub_download`: ``huggingface_hub.snapshot_download`` (branch, tag or commit) into the
  HF cache;
* :func:`load_snapshot`: the snapshot's symbolic links into the cache's blobs become plain files
  in a temporary folder, which then goes through the folder loader's checks (manifest,
  containment, no pickle);
* :func:`push_folder_to_hub`: ``HfApi.upload_folder`` of a saved folder, checked first.

The Hub's own files (``.gitattributes``), and the model card the Hub lets people edit
(``README.md``), are outside the manifest (see :mod:`pet.estimator.manifest`): a card edited on
the Hub or a bot's metadata PR does not stop the repo from loading.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..errors import IntegrityError, ModelError, first_line
from ..utils.jsonio import read_json
from .folder import CONFIG_FILE
from .manifest import UNCHECKED_FILES, refuse_pickle, verify_manifest
from .modelcard import LIBRARY_NAME

_HUB_FIX_AUTH = "pass token= (or run `hf auth login`) with access to it"
_NET_MODULES = {"httpx", "httpx2", "httpcore", "requests", "urllib3"}


def _hub():
    try:
        import huggingface_hub
    except ImportError:  # it comes with transformers; only a broken install lacks it
        raise ModelError("the Hugging Face Hub needs the `huggingface_hub` package; fix: pip install huggingface_hub") from None
    return huggingface_hub


def _is_network_error(e: BaseException) -> bool:
    return isinstance(e, (ConnectionError, TimeoutError)) or type(e).__module__.partition(".")[0] in _NET_MODULES


def hub_download(repo_id: str, revision: str | None, token, cache_dir, local_files_only: bool, force_download: bool) -> Path:
    """``snapshot_download`` into the HF cache, its failures as one-line ``ModelError``s."""
    hf = _hub()
    from huggingface_hub import errors as he

    where = repo_id + (f"@{revision}" if revision else "")
    try:
        return Path(hf.snapshot_download(repo_id, revision=revision, token=token, cache_dir=cache_dir, local_files_only=local_files_only,
                                         force_download=force_download, library_name=LIBRARY_NAME, library_version=__version__))
    except he.GatedRepoError:
        raise ModelError(f"{where}: the Hub repo is gated and you have no access yet; fix: request access on its page, then {_HUB_FIX_AUTH}") from None
    except he.RepositoryNotFoundError:
        raise ModelError(f"{where}: no local folder by that name, and no model repo with that id on the Hugging Face Hub (or it is private); "
                         f"fix: check the id, {_HUB_FIX_AUTH}, or give the path of a saved folder") from None
    except he.RevisionNotFoundError:
        raise ModelError(f"{where}: the Hub repo has no revision '{revision or 'main'}'; fix: pass an existing branch, tag or commit as revision=") from None
    except he.HFValidationError as e:
        raise ModelError(f"{repo_id}: not a saved folder here and not a valid Hub repo id ({first_line(e)}); fix: give the path of a saved folder or an id like 'user/name'") from None
    except he.LocalEntryNotFoundError:
        raise ModelError(f"{where}: cannot download it from the Hugging Face Hub (no connection, or offline mode: HF_HUB_OFFLINE) and no copy is in the cache; "
                         "fix: connect to the network (and unset HF_HUB_OFFLINE) once to fetch it, or give the path of a saved folder") from None
    except he.HfHubHTTPError as e:
        raise ModelError(f"{where}: cannot download from the Hugging Face Hub ({first_line(e)}); fix: check the id and your access ({_HUB_FIX_AUTH}), then retry") from None
    except Exception as e:
        if isinstance(e, OSError) or _is_network_error(e):
            raise ModelError(f"{where}: cannot download from the Hugging Face Hub ({first_line(e)}); fix: check the network connection and disk space, then retry") from None
        raise


def _plain_copy(snapshot: Path, into: Path, where: str) -> None:
    """``snapshot`` as plain files in ``into``. In the HF cache every snapshot file is a symbolic
    link to ``../../blobs/<sha>``: each becomes a hard link to (or, across file systems, a copy
    of) its blob, so :meth:`PetClassifier.load` checks plain files. Only links into the repo's
    own ``blobs`` folder are followed; the Hub's ``.gitattributes`` is left out."""
    blobs = (snapshot.parent.parent / "blobs").resolve()
    fix = "fix: download it again with force_download=True, or load only folders pushed with pet"
    for dirpath, dirnames, filenames in os.walk(snapshot):
        here = Path(dirpath)
        rel = here.relative_to(snapshot)
        for name in dirnames:
            if (here / name).is_symlink():
                raise IntegrityError(f"{where}: {(rel / name).as_posix()} is a linked folder in the download; {fix}")
        (into / rel).mkdir(parents=True, exist_ok=True)
        for name in filenames:
            if rel == Path(".") and name in UNCHECKED_FILES:
                continue
            src = here / name
            target = src.resolve() if src.is_symlink() else src
            if src.is_symlink() and (blobs not in target.parents or not target.is_file()):
                raise IntegrityError(f"{where}: {(rel / name).as_posix()} links outside the Hugging Face cache's blobs; {fix}")
            try:
                os.link(target, into / rel / name)
            except OSError:
                shutil.copyfile(target, into / rel / name)


def load_snapshot(load: Callable[[Path], Any], where: str, snapshot: Path) -> Any:
    """``load(folder)`` on a downloaded snapshot copied to plain files (its errors name the repo)."""
    parent = snapshot.parent.parent
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".pet-load-", dir=parent))
    except OSError:  # a read-only cache: copy to the temp folder instead
        tmp = Path(tempfile.mkdtemp(prefix="pet-load-"))
    try:
        _plain_copy(snapshot, tmp, where)
        if not (tmp / CONFIG_FILE).is_file():
            raise ModelError(f"{where}: this Hub repo is not a saved pet classifier (no {CONFIG_FILE}); fix: give the id of a repo pushed with "
                             "PetClassifier.push_to_hub (a plain masked LM goes to PetClassifier(model=…) instead)")
        try:
            return load(tmp)
        except IntegrityError as e:
            problem = str(e).replace(str(tmp.resolve()), where).replace(str(tmp), where).split("; fix:")[0]
            raise IntegrityError(f"{problem}; fix: the repo's files differ from what pet saved (edited on the Hub?): re-push it with "
                                 "PetClassifier.push_to_hub, or pass the revision= of an unedited commit") from None
        except ModelError as e:
            raise type(e)(str(e).replace(str(tmp.resolve()), where).replace(str(tmp), where)) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def push_folder_to_hub(folder: str | Path, repo_id: str, *, private: bool | None = None, token: str | bool | None = None,
                       revision: str | None = None, commit_message: str | None = None, create_pr: bool = False) -> str:
    """Upload a saved classifier folder as it is (card, metrics, training log) to the Hub repo
    ``repo_id`` (created if missing; ``private`` applies only then) with ``HfApi.upload_folder``,
    in one commit that also deletes the repo's files the folder no longer has (a re-push of a
    smaller ensemble would otherwise leave files the manifest refuses). The folder is checked
    first (manifest, no pickle): nothing that would not load is published. Returns the commit URL."""
    d = Path(folder)
    if not d.is_dir() or not (d / CONFIG_FILE).is_file():
        raise ModelError(f"{d}: not a saved classifier ({CONFIG_FILE} missing); fix: push a folder written by PetClassifier.save or `pet train --output`")
    refuse_pickle(d)
    verify_manifest(d)
    hf = _hub()
    from huggingface_hub import errors as he

    method = (read_json(d / CONFIG_FILE, error=ModelError) or {}).get("method", "?")
    try:
        api = hf.HfApi(token=token)
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        info = api.upload_folder(
            repo_id=getattr(url, "repo_id", None) or repo_id, repo_type="model", folder_path=str(d), revision=revision, create_pr=create_pr,
            commit_message=commit_message or f"Upload pet classifier ({method}) with pet {__version__}", delete_patterns=["*"],
        )
    except he.HFValidationError as e:
        raise ModelError(f"{repo_id}: not a valid Hub repo id ({first_line(e)}); fix: use an id like 'user/name'") from None
    except (he.LocalTokenNotFoundError, he.RepositoryNotFoundError) as e:
        raise ModelError(f"{repo_id}: cannot push ({first_line(e)}); fix: {_HUB_FIX_AUTH} (a token with write access to that namespace)") from None
    except he.HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        fix = f"{_HUB_FIX_AUTH} (a token with write access)" if status in (401, 403) else "check the repo id and revision, then retry"
        raise ModelError(f"{repo_id}: the Hugging Face Hub refused the upload ({first_line(e)}); fix: {fix}") from None
    except Exception as e:
        if isinstance(e, OSError) or _is_network_error(e):
            raise ModelError(f"{repo_id}: cannot upload to the Hugging Face Hub ({first_line(e)}); fix: check the network connection "
                             "(and unset HF_HUB_OFFLINE), then retry") from None
        raise
    return str(getattr(info, "commit_url", None) or info)

