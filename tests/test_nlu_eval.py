"""bench/nlu_eval.py: a dev run never scores a sealed held-out set."""

from __future__ import annotations

from pathlib import Path

from bench import nlu_eval


def _sets(tmp_path: Path, names: list[str]) -> Path:
    for name in names:
        (tmp_path / f"{name}.yml").write_text("version: '3.1'\nnlu: []\n")
    return tmp_path


def test_dev_run_drops_every_sealed_set(tmp_path):
    heldout = _sets(tmp_path, ["en", "my", "my_fresh", "my_sealed", "my_sealed2", "my_sealed3", "shn"])
    dev = [p.stem for p in nlu_eval.heldout_paths(dev=True, heldout=heldout)]
    assert dev == ["en", "my", "my_fresh", "shn"]


def test_full_run_keeps_sealed_sets(tmp_path):
    heldout = _sets(tmp_path, ["en", "my_fresh", "my_sealed2"])
    full = [p.stem for p in nlu_eval.heldout_paths(heldout=heldout)]
    assert full == ["en", "my_fresh", "my_sealed2"]


def test_sealed_is_the_suffix_not_a_substring():
    assert nlu_eval.is_sealed("my_sealed3")
    assert not nlu_eval.is_sealed("sealed")  # a set's language is its name up to "_"
    assert not nlu_eval.is_sealed("my_fresh")


def test_the_doc_lists_dev_and_blind_sets_from_the_files(tmp_path):
    heldout = _sets(tmp_path, ["en", "my_fresh", "my_sealed", "my_sealed11", "my_sealed3", "my_lookalikes9"])
    (heldout / "my_lookalikes9.yml").write_text(
        "# It was the NINTH SEALED set (bot/heldout/my_sealed9.yml)\nnlu: []\n"
    )
    text = nlu_eval.describe_sets(heldout)
    assert text.startswith("`my_lookalikes9`, once `my_sealed9`, was unsealed")
    # numeric order, and the issue-era my_sealed is described apart
    assert text.endswith("`my_sealed3` and `my_sealed11` are blind")
