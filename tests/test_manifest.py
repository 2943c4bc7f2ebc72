"""pet.estimator.manifest on a real saved folder (the tiny saved BERT in the documented classifier layout):
checksums, containment of paths from a saved config, and refusal of pickle weights."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from pet.errors import IntegrityError, ModelError, PetError
from pet.estimator.manifest import MANIFEST_FILE, read_manifest, refuse_pickle, resolve_inside, verify_manifest, write_manifest

CFG = "pet_config.json"


def make_saved_folder(model_dir: str | Path, dest: Path) -> Path:
    """A saved-classifier folder as PetClassifier.save lays it out (pet_config.json at the root,
    the member model under models/0), built through pet.utils.io.atomic_directory, manifest last."""
    from pet.utils.io import atomic_directory

    with atomic_directory(dest) as d:
        shutil.copytree(model_dir, d / "models" / "0")
        (d / "patterns.json").write_text(json.dumps({"patterns": [{"id": "a", "template": "{text_a} It was {mask}."}]}))
        (d / "verbalizers.json").write_text(json.dumps({"verbalizers": [{"id": "v", "labels": {"0": ["bad"], "1": ["good"]}}]}))
        (d / CFG).write_text(json.dumps({
            "format_version": 1, "method": "zero-shot", "labels": ["0", "1"], "pvps": ["a:v"],
            "predictor": {"kind": "prompt-ensemble", "members": [{"pvp": "a:v", "model": "models/0"}]},
        }))
        write_manifest(d)
    return dest


@pytest.fixture
def saved(tiny_bert_dir, tmp_path) -> Path:
    return make_saved_folder(tiny_bert_dir, tmp_path / "clf")


def test_manifest_lists_every_file_and_verifies(saved):
    files = read_manifest(saved)
    on_disk = {p.relative_to(saved).as_posix() for p in saved.rglob("*") if p.is_file()} - {MANIFEST_FILE}
    assert set(files) == on_disk and CFG in files and "models/0/model.safetensors" in files
    assert all(len(e["sha256"]) == 64 and e["size"] >= 0 for e in files.values())
    verify_manifest(saved)  # a fresh folder passes


def test_manifest_is_deterministic(saved):
    before = (saved / MANIFEST_FILE).read_text()
    write_manifest(saved)
    assert (saved / MANIFEST_FILE).read_text() == before


def test_edited_pvp_file_is_named(saved):
    p = saved / "verbalizers.json"
    p.write_text(p.read_text().replace("good", "great"))
    with pytest.raises(IntegrityError, match=r"verbalizers.json changed since the folder was saved.*fix: re-save"):
        verify_manifest(saved)


def test_same_size_edit_is_caught(saved):
    p = saved / "models" / "0" / "model.safetensors"
    data = bytearray(p.read_bytes())
    data[-1] ^= 0xFF  # flip one byte: size unchanged, hash differs
    p.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"models/0/model.safetensors changed"):
        verify_manifest(saved)


def test_missing_extra_and_counted(saved):
    (saved / "patterns.json").unlink()
    (saved / "models" / "0" / "evil.py").write_text("import os")
    with pytest.raises(IntegrityError, match=r"patterns.json is listed in manifest.json but missing \(and 1 more problem\)"):
        verify_manifest(saved)
    (saved / "patterns.json").write_text("{}")
    with pytest.raises(IntegrityError, match=r"patterns.json changed"):
        verify_manifest(saved)


def test_extra_file_named(saved):
    (saved / "notes.txt").write_text("hi")
    with pytest.raises(IntegrityError, match=r"notes.txt is not in manifest.json \(added after saving\)"):
        verify_manifest(saved)


def test_missing_or_broken_manifest(saved):
    m = saved / MANIFEST_FILE
    m.write_text('{"files": ')
    with pytest.raises(IntegrityError, match=r"manifest.json: malformed JSON at line 1"):
        verify_manifest(saved)
    m.write_text(json.dumps({"algorithm": "md5", "files": {}}))
    with pytest.raises(IntegrityError, match=r"not a pet manifest"):
        verify_manifest(saved)
    m.write_text(json.dumps({"algorithm": "sha256", "files": {"pet_config.json": {"sha256": 1}}}))
    with pytest.raises(IntegrityError, match=r"\$.files.pet_config.json: needs"):
        verify_manifest(saved)
    m.unlink()
    with pytest.raises(IntegrityError, match=r"no manifest.json.*fix: re-save"):
        verify_manifest(saved)


def test_manifest_entry_pointing_outside(saved, tmp_path):
    files = read_manifest(saved)
    files["../outside.txt"] = {"sha256": "0" * 64, "size": 0}
    (saved / MANIFEST_FILE).write_text(json.dumps({"format": 1, "algorithm": "sha256", "files": files}))
    with pytest.raises(IntegrityError, match=r"\$.files: '../outside.txt' leads out of the folder"):
        verify_manifest(saved)


def test_symlink_inside_saved_folder_refused(saved, tmp_path):
    (tmp_path / "elsewhere.json").write_text("{}")
    (saved / "linked.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(IntegrityError, match=r"linked.json is a symbolic link"):
        verify_manifest(saved)
    with pytest.raises(IntegrityError, match=r"symbolic link"):
        write_manifest(saved)


@pytest.mark.parametrize(
    "rel,why",
    [
        ("../elsewhere", "leads out of the folder"),
        ("models/../../elsewhere", "leads out of the folder"),
        ("/etc/passwd", "absolute path"),
        ("~/model", "absolute path"),
        ("C:\\models\\x", "absolute path"),
        ("\\\\server\\share", "absolute path"),
        ("models\\..\\..\\x", "leads out of the folder"),
        ("", "is not a path"),
        (None, "is not a path"),
        (["models/0"], "is not a path"),
        ("models/0\x00", "NUL byte"),
    ],
)
def test_resolve_inside_refuses(saved, rel, why):
    with pytest.raises(IntegrityError, match=rf"pet_config.json: \$.predictor.members\[0\].model: .*{why}"):
        resolve_inside(saved, rel, "pet_config.json: $.predictor.members[0].model")


def test_resolve_inside_symlink_out(saved, tmp_path):
    outside = tmp_path / "elsewhere"
    shutil.copytree(saved / "models" / "0", outside)
    (saved / "models" / "1").symlink_to(outside, target_is_directory=True)
    with pytest.raises(IntegrityError, match=r"'models/1' resolves outside the folder"):
        resolve_inside(saved, "models/1", "pet_config.json: $.predictor.members[1].model")


def test_resolve_inside_accepts_member_paths(saved):
    assert resolve_inside(saved, "models/0", "m") == (saved / "models" / "0").resolve()
    assert resolve_inside(saved, "./models/0/config.json", "m").is_file()
    cfg = json.loads((saved / CFG).read_text())
    for i, mem in enumerate(cfg["predictor"]["members"]):
        assert resolve_inside(saved, mem["model"], f"$.predictor.members[{i}].model").is_dir()


def test_real_saved_folder_has_no_pickle(saved):
    refuse_pickle(saved)  # safetensors, JSON and tokenizer files only


@pytest.mark.parametrize("name", ["pytorch_model.bin", "weights.pt", "state.pth", "obj.pkl", "training_args.bin", "cache.joblib"])
def test_pickle_by_name_refused(saved, name):
    (saved / "models" / "0" / name).write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(IntegrityError, match=rf"models/0/{name} is a pickle file.*only loads safetensors"):
        refuse_pickle(saved)


def test_pickle_by_content_refused(saved, tmp_path):
    import torch

    (saved / "innocent.dat").write_bytes(pickle.dumps([1, 2, 3], protocol=4))
    with pytest.raises(IntegrityError, match=r"innocent.dat is a pickle file"):
        refuse_pickle(saved)
    (saved / "innocent.dat").unlink()
    torch.save({"w": torch.zeros(2)}, saved / "weights.data")  # torch's zip format holds data.pkl
    with pytest.raises(IntegrityError, match=r"weights.data is a pickle file"):
        refuse_pickle(saved)


def test_errors_are_one_family(saved):
    assert issubclass(IntegrityError, ModelError) and issubclass(IntegrityError, PetError)
    (saved / "extra").write_text("x")
    with pytest.raises(PetError) as e:
        verify_manifest(saved)
    assert "\n" not in str(e.value) and str(saved) in str(e.value)
