"""Hugging Face conventions for saved classifiers: model card, save_pretrained / from_pretrained
(local folder or Hub repo id through snapshot_download), push_to_hub (HfApi.upload_folder).
No network: the Hub is replaced by monkeypatched huggingface_hub functions."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
import yaml

from pet import __version__
from pet.estimator.classifier import CONFIG_FILE, PetClassifier, push_folder_to_hub
from pet.errors import IntegrityError, ModelError, PetError
from pet.estimator.manifest import read_manifest, write_manifest
from pet.estimator.modelcard import hub_model_id, model_card, read_front_matter
from pet.prompts.spec import PVP, Pattern, Verbalizer

GOOD_BAD = Verbalizer("good-bad", {"neg": ["bad", "awful"], "pos": ["good"]})
PVPS = [PVP(Pattern("it-was", "{text_a} It was {mask}."), GOOD_BAD), PVP(Pattern("just", "Just {mask}! {text_a}"), GOOD_BAD)]
TEXTS = ["good", "bad", "good good", "bad bad", "very good", "very bad"]
Y = ["pos", "neg", "pos", "neg", "pos", "neg"]
ROWS = [
    {"task": "own", "k": 3, "seed": 1, "n_train": 6, "n_unlabelled": 0, "key": "pvp[it-was:good-bad]", "stage": "pvp", "final": False,
     "split": "test", "n": 6, "score": 0.5, "metrics": {"accuracy": 0.5, "macro_f1": 0.3333}},
    {"task": "own", "k": 3, "seed": 1, "n_train": 6, "n_unlabelled": 0, "key": "ensemble", "stage": "ensemble", "final": True,
     "split": "test", "n": 6, "score": 0.8333, "metrics": {"accuracy": 0.8333, "macro_f1": 0.8}},
]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def clf(tiny_bert_dir):
    return PetClassifier(tiny_bert_dir, "prompt-ft", pvps=PVPS, options={"steps": 2, "lr": 1e-3, "max_length": 32}).fit(TEXTS, Y)


@pytest.fixture(scope="module")
def saved(clf, tmp_path_factory):
    return clf.save_pretrained(tmp_path_factory.mktemp("hub") / "clf", metrics=ROWS)


def _one_line_with_fix(e: BaseException) -> str:
    msg = str(e.value if hasattr(e, "value") else e)
    assert isinstance(e.value, PetError) and "\n" not in msg and "fix:" in msg, msg
    return msg


# ---------------------------------------------------------------------------------- the card


def test_card_front_matter_and_body(saved, tiny_bert_dir):
    text = (saved / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    fm = read_front_matter(text)
    assert fm == yaml.safe_load(text.split("---\n")[1])  # plain YAML between the first two fences
    assert fm["library_name"] == "pet-fewshot" and fm["pipeline_tag"] == "text-classification"
    assert {"pet", "few-shot", "prompt-ft", "text-classification"} <= set(fm["tags"])
    assert fm["labels"] == ["neg", "pos"] and fm["task"] == "own"
    assert "base_model" not in fm  # a local folder is no Hub base model
    body = text.split("---\n", 2)[2]
    for template in ("`{text_a} It was {mask}.`", "`Just {mask}! {text_a}`"):
        assert template in body
    assert "| neg | `bad`, `awful` |" in body and "| pos | `good` |" in body
    assert "| `steps` | 2 |" in body and "| `lr` | 0.001 |" in body
    assert "6 labelled training examples" in body and "per label: neg: 3, pos: 3" in body
    assert "| **ensemble** (final) | test | 6 | 0.8333 | 0.8000 |" in body  # metrics.json's rows
    assert f'PetClassifier.from_pretrained("{saved.as_posix()}")' in body  # the real folder it was saved to
    assert "pip install pet-fewshot" in body and "| label names | neg, pos |" in body
    assert f"pet {__version__}" in body and Path(tiny_bert_dir).name in body and str(Path(tiny_bert_dir)) not in body  # the base folder by name only
    # the Hub's model-index from the final stage, through huggingface_hub's own card data
    (result,) = fm["model-index"]
    assert result["name"] == "clf" and fm["metrics"] == ["accuracy", "macro_f1"]
    got = {m["type"]: m["value"] for m in result["results"][0]["metrics"]}
    assert got == {"accuracy": 0.8333, "macro_f1": 0.8} and result["results"][0]["dataset"]["split"] == "test"
    # nothing loads the card, so the manifest leaves it out (the Hub's editor may change it)
    assert "README.md" not in read_manifest(saved)


def test_card_license_language_datasets_and_label_names(clf, tmp_path):
    out = clf.save(tmp_path / "c", card={"license": "mit", "language": "en", "datasets": ["sst2"]}, repo_id="me/clf")
    fm = read_front_matter((out / "README.md").read_text(encoding="utf-8"))
    assert fm["license"] == "mit" and fm["language"] == "en" and fm["datasets"] == ["sst2"]
    assert 'from_pretrained("me/clf")' in (out / "README.md").read_text()
    with pytest.raises(PetError, match="card: unknown field 'licence'; fix: use license, language, datasets"):
        clf.save(tmp_path / "d", card={"licence": "mit"})


def test_card_without_metrics_base_model_id_and_hub_ids():
    meta = {"format_version": 2, "method": "cls-ft", "model": "google-bert/bert-base-uncased", "labels": ["0", "1"],
            "label_values": [0, 1], "options": {"steps": 10}, "final_stage": "cls", "predictor": {"kind": "sequence-classifier"},
            "versions": {"pet": "9.9"}}
    text = model_card(meta, [], None, repo_id="me/my-clf")
    fm = read_front_matter(text)
    assert fm["base_model"] == "google-bert/bert-base-uncased" and fm["labels"] == ["0", "1"] and "task" not in fm
    assert "No evaluation was saved" in text and "uses no pattern-verbalizer pairs" in text
    assert 'PetClassifier.from_pretrained("me/my-clf")' in text
    assert hub_model_id("bert-base-uncased") == "bert-base-uncased"
    assert all(hub_model_id(x) is None for x in ("/abs/path", "a/b/c", "../x", "", None, "./m"))


def test_edited_card_and_git_files_still_load_but_weights_stay_checked(saved, tmp_path):
    """The Hub's "edit model card", a bot PR adding license:, a git clone's .gitattributes and
    .git/ leave the folder loadable; every file loading reads is still checked."""
    edited = tmp_path / "edited"
    shutil.copytree(saved, edited)
    card = (edited / "README.md").read_text(encoding="utf-8")
    (edited / "README.md").write_text(card.replace("---\n", "---\nlicense: apache-2.0\n", 1) + "\nMy notes.\n", encoding="utf-8")
    (edited / ".gitattributes").write_text("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
    (edited / ".git" / "objects").mkdir(parents=True)
    (edited / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    assert np.array_equal(PetClassifier.load(edited).predict_proba(TEXTS), PetClassifier.load(saved).predict_proba(TEXTS))
    weights = next(edited.glob("models/0/*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    with pytest.raises(IntegrityError, match="models/0/model.safetensors changed") as e:
        PetClassifier.load(edited)
    _one_line_with_fix(e)
    # a folder saved before cards existed: no README.md, its manifest lists what is there
    old = tmp_path / "old"
    shutil.copytree(saved, old)
    (old / "README.md").unlink()
    write_manifest(old)
    assert "README.md" not in read_manifest(old)
    a, b = PetClassifier.load(old), PetClassifier.from_pretrained(str(old))
    assert np.array_equal(a.predict_proba(TEXTS), b.predict_proba(TEXTS))


# ------------------------------------------------------------------ save_pretrained / from_pretrained (local)


def test_from_pretrained_local_equals_load(clf, saved):
    a, b = PetClassifier.load(saved), PetClassifier.from_pretrained(saved)
    assert a.saved_config_ == b.saved_config_ and list(a.classes_) == list(b.classes_) == ["neg", "pos"]
    assert np.array_equal(a.predict_proba(TEXTS), b.predict_proba(TEXTS))
    assert np.array_equal(b.predict_proba(TEXTS), clf.predict_proba(TEXTS))
    assert b.train_data_ == {"examples": 6, "per_label": {"neg": 3, "pos": 3}, "unlabelled": 0}


def test_save_pretrained_replaces_a_saved_folder_only(clf, tmp_path):
    out = clf.save_pretrained(tmp_path / "m")
    first = json.loads((out / CONFIG_FILE).read_text())["saved_at"]
    assert clf.save_pretrained(tmp_path / "m") == out and (out / "README.md").is_file()  # HF habit: save again, same place
    assert json.loads((out / CONFIG_FILE).read_text())["saved_at"] >= first
    other = tmp_path / "not-a-model"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(PetError, match="is not a saved model folder pet wrote"):
        clf.save_pretrained(other)
    assert (other / "notes.txt").read_text() == "keep me"


# ------------------------------------------------------------------ from_pretrained (Hub repo id)


def _hub_cache(saved: Path, root: Path, repo: str = "user/pet-clf", commit: str = "a" * 40) -> Path:
    """``saved`` laid out the way snapshot_download leaves a repo in the HF cache: blobs named by
    hash, snapshots/<commit>/ made of symbolic links to them, plus the Hub's .gitattributes."""
    repo_dir = root / f"models--{repo.replace('/', '--')}"
    blobs, snap = repo_dir / "blobs", repo_dir / "snapshots" / commit
    blobs.mkdir(parents=True)
    files = {p.relative_to(saved).as_posix(): p.read_bytes() for p in saved.rglob("*") if p.is_file()}
    files[".gitattributes"] = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    for rel, data in files.items():
        blob = blobs / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snap / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snap


@pytest.fixture
def fake_download(monkeypatch):
    calls = []

    def install(result):
        def snapshot_download(repo_id, **kw):
            calls.append({"repo_id": repo_id, **kw})
            if isinstance(result, BaseException):
                raise result
            return str(result)

        monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
        return calls

    return install


def test_from_pretrained_repo_id_goes_through_the_cache_and_load(saved, tmp_path, fake_download):
    snap = _hub_cache(saved, tmp_path / "cache")
    calls = fake_download(snap)
    clf = PetClassifier.from_pretrained("user/pet-clf", revision="v1", token="hf_x", cache_dir=tmp_path / "cache")
    assert np.array_equal(clf.predict_proba(TEXTS), PetClassifier.load(saved).predict_proba(TEXTS))
    assert calls == [{"repo_id": "user/pet-clf", "revision": "v1", "token": "hf_x", "cache_dir": tmp_path / "cache",
                      "local_files_only": False, "force_download": False, "library_name": "pet-fewshot", "library_version": __version__}]
    # the plain-file copy that was checked and loaded is gone; the cache is untouched
    repo_dir = snap.parent.parent
    assert sorted(p.name for p in repo_dir.iterdir()) == ["blobs", "snapshots"]
    assert all(p.is_symlink() for p in snap.rglob("*") if not p.is_dir())


def test_from_pretrained_plain_folder_download(saved, tmp_path, fake_download):
    """Where the cache holds copies rather than links (Windows without symlinks), it loads too."""
    snap = tmp_path / "models--user--x" / "snapshots" / ("b" * 40)
    shutil.copytree(saved, snap)
    fake_download(snap)
    assert list(PetClassifier.from_pretrained("user/x").classes_) == ["neg", "pos"]


@pytest.mark.parametrize("tamper,match", [
    ("edit", r"user/pet-clf@main: pet_config.json changed since the folder was saved"),
    ("add", r"user/pet-clf@main: extra.txt is not in manifest.json"),
    ("pickle", r"user/pet-clf@main: models/0/pytorch_model.bin is a pickle file"),
    ("escape", r"user/pet-clf@main: models/0/config.json links outside the Hugging Face cache's blobs"),
    ("no-config", r"user/pet-clf@main: this Hub repo is not a saved pet classifier"),
])
def test_tampered_download_is_refused(saved, tmp_path, fake_download, tamper, match):
    snap = _hub_cache(saved, tmp_path / "cache")
    if tamper == "edit":  # the blob behind pet_config.json changed (a consistent-looking file, another label)
        blob = (snap / CONFIG_FILE).resolve()
        blob.write_text(blob.read_text().replace('"pos"', '"POS"'))
    elif tamper == "add":
        (snap / "extra.txt").write_text("hello")
    elif tamper == "pickle":
        (snap / "models" / "0" / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")
    elif tamper == "escape":
        outside = tmp_path / "outside.json"
        outside.write_text("{}")
        (snap / "models" / "0" / "config.json").unlink()
        (snap / "models" / "0" / "config.json").symlink_to(outside)
    else:
        (snap / CONFIG_FILE).unlink()
    fake_download(snap)
    with pytest.raises(ModelError, match=match) as e:
        PetClassifier.from_pretrained("user/pet-clf", revision="main")
    msg = _one_line_with_fix(e)
    assert str(tmp_path) not in msg.split("; fix:")[0] or tamper == "escape"
    assert not list(snap.parent.parent.glob(".pet-load-*"))  # nothing left behind


def _response(code: int):
    try:
        import httpx2 as hx
    except ImportError:  # huggingface_hub's HTTP client, whichever this version uses
        import httpx as hx
    return hx.Response(code, request=hx.Request("GET", "https://huggingface.co/api/models/user/x"))


@pytest.mark.parametrize("error,match", [
    (lambda: huggingface_hub.errors.RepositoryNotFoundError("404 Repository Not Found", response=_response(404)),
     r"user/x: no local folder by that name, and no model repo with that id on the Hugging Face Hub .*fix: check the id"),
    (lambda: huggingface_hub.errors.GatedRepoError("403 gated", response=_response(403)), r"user/x: the Hub repo is gated.*fix: request access"),
    (lambda: huggingface_hub.errors.RevisionNotFoundError("404 Revision Not Found", response=_response(404)),
     r"user/x: the Hub repo has no revision 'main'; fix: pass an existing branch"),
    (lambda: huggingface_hub.errors.HfHubHTTPError("500 Server Error", response=_response(500)),
     r"user/x: cannot download from the Hugging Face Hub \(500 Server Error\); fix: check the id"),
    (lambda: ConnectionError("Name or service not known"), r"user/x: cannot download from the Hugging Face Hub \(Name or service not known\); fix: check the network"),
])
def test_download_errors_are_one_line_with_a_fix(fake_download, error, match):
    fake_download(error())
    with pytest.raises(ModelError, match=match) as e:
        PetClassifier.from_pretrained("user/x")
    _one_line_with_fix(e)


def test_no_network_and_no_cache_is_one_line(tmp_path):
    """The real snapshot_download, offline (local_files_only): nothing in the cache."""
    with pytest.raises(ModelError, match=r"user/absent@v2: cannot download it from the Hugging Face Hub .* no copy is in the cache; fix: connect") as e:
        PetClassifier.from_pretrained("user/absent", revision="v2", cache_dir=tmp_path / "empty-cache", local_files_only=True)
    _one_line_with_fix(e)


def test_not_a_repo_id_nor_a_folder(tmp_path):
    with pytest.raises(ModelError, match="not a saved classifier") as e:
        PetClassifier.from_pretrained(tmp_path / "missing" / "deep" / "folder")
    _one_line_with_fix(e)


# ---------------------------------------------------------------------------------- push_to_hub


class FakeApi:
    """Records what would go to the Hub; checks the folder while it still exists."""

    instances: list = []
    fail_with: BaseException | None = None

    def __init__(self, token=None, **kw):
        self.token, self.calls = token, []
        FakeApi.instances.append(self)

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", repo_id, kw))
        if FakeApi.fail_with is not None:
            raise FakeApi.fail_with
        return huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, **kw):
        folder = Path(kw["folder_path"])
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        card = read_front_matter((folder / "README.md").read_text()) if (folder / "README.md").is_file() else None
        text = (folder / "README.md").read_text() if card is not None else ""
        loaded = PetClassifier.load(folder)  # what is uploaded loads
        self.calls.append(("upload_folder", kw, files, card, text, list(loaded.classes_)))
        return huggingface_hub.CommitInfo(commit_url=f"https://huggingface.co/{kw['repo_id']}/commit/c0ffee", commit_message="m",
                                          commit_description="", oid="c0ffee")


@pytest.fixture
def fake_api(monkeypatch):
    FakeApi.instances, FakeApi.fail_with = [], None
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    return FakeApi


def test_push_to_hub_uploads_the_saved_folder(clf, fake_api):
    url = clf.push_to_hub("me/my-clf", private=True, token="hf_write", metrics=ROWS)
    assert url == "https://huggingface.co/me/my-clf/commit/c0ffee"
    (api,) = fake_api.instances
    assert api.token == "hf_write"
    (create, upload) = api.calls
    assert create == ("create_repo", "me/my-clf", {"private": True, "exist_ok": True, "repo_type": "model"})
    _, kw, files, card, text, classes = upload
    folder = Path(kw["folder_path"])
    assert folder.name == "model" and folder.parent.name.startswith("pet-push-") and not folder.exists()  # a temp folder, removed
    assert {k: v for k, v in kw.items() if k != "folder_path"} == {
        "repo_id": "me/my-clf", "repo_type": "model", "revision": None, "create_pr": False,
        "commit_message": f"Upload pet classifier (prompt-ft) with pet {__version__}", "delete_patterns": ["*"]}
    assert {"README.md", "manifest.json", CONFIG_FILE, "patterns.json", "verbalizers.json", "metrics.json", "training_log.jsonl",
            "models/0/model.safetensors", "models/1/model.safetensors"} <= set(files)
    assert not any(f.endswith((".bin", ".pt", ".pkl")) for f in files)
    assert card["library_name"] == "pet-fewshot" and card["labels"] == ["neg", "pos"] and classes == ["neg", "pos"]
    assert 'PetClassifier.from_pretrained("me/my-clf")' in text


def test_push_folder_to_hub_uploads_that_folder_as_is(saved, tmp_path, fake_api):
    push_folder_to_hub(saved, "me/from-folder", revision="dev", commit_message="first")
    (_, upload) = fake_api.instances[0].calls
    assert upload[1]["folder_path"] == str(saved) and upload[1]["revision"] == "dev" and upload[1]["commit_message"] == "first"
    assert upload[2] == sorted(p.relative_to(saved).as_posix() for p in saved.rglob("*") if p.is_file())
    # a folder that would not load is never published: refused before any Hub call
    bad = tmp_path / "bad"
    shutil.copytree(saved, bad)
    (bad / "metrics.json").write_text("{}")
    fake_api.instances.clear()
    with pytest.raises(IntegrityError, match="metrics.json changed"):
        push_folder_to_hub(bad, "me/bad")
    assert fake_api.instances == []


@pytest.mark.parametrize("error,match", [
    (lambda: huggingface_hub.errors.HfHubHTTPError("403 Forbidden: no write access", response=_response(403)),
     r"me/x: the Hugging Face Hub refused the upload \(403 Forbidden: no write access\); fix: pass token="),
    (lambda: huggingface_hub.errors.LocalTokenNotFoundError("Token is required"), r"me/x: cannot push \(Token is required\); fix: pass token="),
    (lambda: ConnectionError("Name or service not known"), r"me/x: cannot upload to the Hugging Face Hub \(Name or service not known\); fix: check the network"),
])
def test_push_errors_are_one_line_with_a_fix(saved, fake_api, error, match):
    fake_api.fail_with = error()
    with pytest.raises(ModelError, match=match) as e:
        push_folder_to_hub(saved, "me/x")
    _one_line_with_fix(e)
