"""A run that scores a model on its own training or validation cases says so (by image content)."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from harness.datasets.phantom import phantom_dataset
from harness.training_overlap import image_digests, manifest_sha256, overlap_note, seen_cases


def _model(tmp_path: Path, record: dict | None) -> SimpleNamespace:
    if record is not None:
        (tmp_path / "training.json").write_text(json.dumps(record))
    card = SimpleNamespace(extra={"training": {"record": "training.json"}}, base_dir=tmp_path)
    return SimpleNamespace(model_card=card)


def test_cases_seen_in_training_are_found_by_image_content(tmp_path: Path) -> None:
    trained = phantom_dataset(2, n=6, seed=0).manifest()
    record = {"seen_images": {"train": image_digests(trained, ["phantom2d_000", "phantom2d_002"]),
                              "val": image_digests(trained, ["phantom2d_004"])}}
    model = _model(tmp_path, record)
    assert seen_cases(model, trained) == {"train": ["phantom2d_000", "phantom2d_002"], "val": ["phantom2d_004"]}
    (note,) = overlap_note(model, trained)
    assert note.startswith("3 of the 6 evaluated cases were seen by the model in training (2 in its training "
                           "split, 1 in its validation split; e.g. phantom2d_000")
    renamed = trained.rename(index=lambda cid: cid.replace("phantom2d", "scan"))  # same images, other ids
    assert seen_cases(model, renamed)["train"] == ["scan_000", "scan_002"]
    other = phantom_dataset(2, n=6, seed=3).manifest()  # same ids, other images: not seen
    assert overlap_note(model, other) == []


def test_older_records_are_matched_by_id_only_on_the_same_data(tmp_path: Path) -> None:
    manifest = phantom_dataset(2, n=4, seed=0).manifest()
    split = {"train": ["phantom2d_001"], "val": [], "test": ["phantom2d_000"]}
    same = _model(tmp_path, {"manifest_sha256": manifest_sha256(manifest), "split": split})
    assert seen_cases(same, manifest) == {"train": ["phantom2d_001"], "val": []}
    other = _model(tmp_path, {"manifest_sha256": "0" * 64, "split": split})
    assert seen_cases(other, manifest) == {"train": [], "val": []}


def test_models_without_a_readable_record_are_not_checked(tmp_path: Path) -> None:
    manifest = pd.DataFrame({"image_sha256": ["ab" * 32]}, index=pd.Index(["c1"], name="case_id"))
    assert overlap_note(SimpleNamespace(), manifest) == []  # no card
    assert overlap_note(_model(tmp_path / "missing", None), manifest) == []  # record file absent
    (tmp_path / "training.json").write_text("{not json")
    assert overlap_note(_model(tmp_path, None), manifest) == []


def test_a_trained_model_run_on_its_training_data_gets_the_note(tmp_path: Path) -> None:
    from harness.cli import main
    from harness.train.command import main as train_main

    assert train_main(["--data", "phantom2d:n=4", "--out", str(tmp_path / "m"), "--epochs", "1", "--iters", "1",
                       "--features", "4,8", "--patch", "32,32", "--no-progress", "--folds", "test=1"]) == 0
    record = json.loads((tmp_path / "m" / "training.json").read_text())
    assert sorted(record["seen_images"]) == ["train", "val"] and len(record["seen_images"]["train"]) >= 1
    main(["run", "--suite", "smoke", "--model", str(tmp_path / "m" / "model.toml"), "--data", "phantom2d:n=4",
          "--out", str(tmp_path / "run"), "--workers", "1"])
    (note,) = [n for n in json.loads((tmp_path / "run" / "summary.json").read_text())["notes"] if "seen by the model" in n]
    n_seen = len(record["split"]["train"]) + len(record["split"]["val"])
    assert note.startswith(f"{n_seen} of the 4 evaluated cases") and record["split"]["test"][0] not in note


def test_held_out_evaluates_only_cases_the_model_never_saw(tmp_path: Path, capsys) -> None:
    from harness.cli import main
    from harness.train.command import main as train_main

    assert train_main(["--data", "phantom2d:n=5", "--out", str(tmp_path / "m"), "--epochs", "1", "--iters", "1",
                       "--features", "4,8", "--patch", "32,32", "--no-progress", "--folds", "test=2"]) == 0
    test_ids = json.loads((tmp_path / "m" / "training.json").read_text())["split"]["test"]
    card = str(tmp_path / "m" / "model.toml")
    main(["run", "--suite", "smoke", "--model", card, "--data", "phantom2d:n=5", "--held-out",
          "--out", str(tmp_path / "run"), "--workers", "1"])
    cases = pd.read_csv(tmp_path / "run" / "cases.csv")
    assert sorted(cases["case_id"]) == sorted(test_ids)
    notes = json.loads((tmp_path / "run" / "summary.json").read_text())["notes"]
    assert any(n.startswith("--held-out: 3 case(s) seen by the model in training") and
               n.endswith("were left out; 2 of the data's 5 cases evaluated") for n in notes)
    assert not any("evaluated cases were seen by the model" in n for n in notes)  # no overlap note
    # the bundled model was trained on other phantoms (seed 1000): nothing left out
    main(["run", "--suite", "smoke", "--data", "phantom2d:n=3", "--held-out", "--out", str(tmp_path / "r2"), "--workers", "1"])
    notes = json.loads((tmp_path / "r2" / "summary.json").read_text())["notes"]
    assert any(n.startswith("--held-out: 0 case(s) seen") and n.endswith("3 of the data's 3 cases evaluated") for n in notes)
    # a model without a training record, or data it has entirely seen, is refused (exit 3)
    bare = tmp_path / "bare.toml"
    bare.write_text((tmp_path / "m" / "model.toml").read_text().split("[training]")[0]
                    .replace('weights = "', f'weights = "{tmp_path / "m"}/'))
    assert main(["run", "--suite", "smoke", "--model", str(bare), "--data", "phantom2d:n=5", "--held-out",
                 "--out", str(tmp_path / "r3")]) == 3
    assert "has no training record" in capsys.readouterr().err
    train_ids = json.loads((tmp_path / "m" / "training.json").read_text())["split"]["train"]
    assert main(["run", "--suite", "smoke", "--model", card, "--data", "phantom2d:n=5", "--held-out", "--limit", "1",
                 "--out", str(tmp_path / "r4"), "--workers", "1"]) in (0, 1)  # --limit applies to the held-out cases
    assert pd.read_csv(tmp_path / "r4" / "cases.csv")["case_id"].tolist() == [sorted(test_ids)[0]]
    assert sorted(test_ids)[0] not in train_ids


def test_held_out_refuses_an_old_record_made_on_other_data(tmp_path: Path) -> None:
    import pytest

    from harness.errors import ConfigError
    from harness.training_overlap import held_out

    data = phantom_dataset(2, n=3, seed=0)
    old = _model(tmp_path, {"manifest_sha256": "0" * 64, "split": {"train": ["phantom2d_000"], "val": []}})
    with pytest.raises(ConfigError, match="predates per-image hashes"):
        held_out(data, old)
    same = _model(tmp_path, {"manifest_sha256": manifest_sha256(data.manifest()),
                             "split": {"train": ["phantom2d_000"], "val": ["phantom2d_002"]}})
    kept, (note,) = held_out(data, same)
    assert kept.case_ids == ["phantom2d_001"] and note.startswith("--held-out: 2 case(s) seen by the model")


def test_held_out_with_a_limit_hashes_only_the_cases_it_needs(tmp_path: Path) -> None:
    from harness.training_overlap import held_out

    data = phantom_dataset(2, n=6, seed=0)
    model = _model(tmp_path, {"seen_images": {"train": image_digests(data.manifest(), ["phantom2d_000"]), "val": []}})
    read: list[str] = []
    file_hashes = data.file_hashes
    data.file_hashes = lambda cid: (read.append(cid), file_hashes(cid))[1]  # type: ignore[method-assign]
    kept, (note,) = held_out(data, model, limit=2)
    assert kept.case_ids == ["phantom2d_001", "phantom2d_002"] and read == ["phantom2d_000", "phantom2d_001", "phantom2d_002"]
    kept.manifest()  # the run's cases.csv: from the hashes already taken
    assert read == ["phantom2d_000", "phantom2d_001", "phantom2d_002"]


def test_validate_model_shows_a_case_the_model_did_not_train_on(tmp_path: Path) -> None:
    """validate-model scored the data's first case, a training case, with no word."""
    from harness.training_overlap import first_unseen

    data = phantom_dataset(2, n=4, seed=0)
    manifest = data.manifest()
    model = _model(tmp_path, {"seen_images": {"train": image_digests(manifest, ["phantom2d_000", "phantom2d_001"]),
                                              "val": []}})
    assert first_unseen(data, model) == ("phantom2d_002", "the first 2 case(s) were seen in training or "
                                                          "validation; this is the first one that was not")
    hashed: list[str] = []
    counting = data.file_hashes
    data.file_hashes = lambda cid: hashed.append(cid) or counting(cid)  # type: ignore[method-assign]
    first_unseen(data, model)
    assert hashed == ["phantom2d_000", "phantom2d_001", "phantom2d_002"]  # not every case of the data
    del data.file_hashes
    everything = _model(tmp_path / "all", None)
    (tmp_path / "all").mkdir()
    (tmp_path / "all" / "training.json").write_text(json.dumps(
        {"seen_images": {"train": image_digests(manifest, list(manifest.index)), "val": []}}))
    case_id, said = first_unseen(data, everything)
    assert case_id == "phantom2d_000" and said.startswith("all 4 cases of the data were seen by the model in training")
    assert first_unseen(data, SimpleNamespace(model_card=None)) == ("phantom2d_000", "")


def test_independence_is_not_claimed_when_the_record_cannot_tell(tmp_path: Path) -> None:
    """An old record of case ids made on other data, or an empty record, was read as "independent"."""
    from harness.training_overlap import independence

    manifest = phantom_dataset(2, n=3, seed=0).manifest()
    old = _model(tmp_path, {"split": {"train": ["phantom2d_000"], "val": []}, "manifest_sha256": "0" * 64})
    assert independence(old, manifest)["unchecked"].startswith("the record names no image hashes (seen_images)")
    (tmp_path / "e").mkdir()
    empty = _model(tmp_path / "e", {})
    assert independence(empty, manifest)["unchecked"] == "the record names neither image hashes nor a split"
    (tmp_path / "s").mkdir()
    same = _model(tmp_path / "s", {"split": {"train": ["phantom2d_000"], "val": []},
                                   "manifest_sha256": manifest_sha256(manifest)})
    found = independence(same, manifest)
    assert found["seen_train"] == 1 and "unchecked" not in found
    (tmp_path / "h").mkdir()
    hashed = _model(tmp_path / "h", {"seen_images": {"train": image_digests(manifest, ["phantom2d_001"]), "val": []}})
    assert independence(hashed, manifest.drop(columns=["image_sha256"]))["unchecked"] == \
        "the evaluated cases have no image hashes"
    assert independence(hashed, manifest)["seen_train"] == 1
