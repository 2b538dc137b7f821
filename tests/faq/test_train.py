"""`faq train`: contrastive batches, the loss, and a fine-tuned model the bot can run."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from bot.settings import Settings
from faq.encoder import Encoder
from faq.models import MINILM
from faq.onnx_runner import OnnxModel
from faq.train import (
    RECORD,
    TrainConfig,
    _batches,
    _supervised_contrastive,
    fine_tune,
    trained_from,
)

KB = {
    "shipping": [
        "how long does shipping take",
        "when will my miner arrive",
        "delivery time to europe",
        "is my parcel on the way",
        "shipping time to canada",
        "what day will the package be delivered",
        "how many days for delivery",
    ],
    "refund": [
        "can i get my money back",
        "refund please",
        "i want to cancel and be refunded",
        "how do refunds work",
        "return the miner for my money",
        "when is my refund paid",
        "i was charged but want a refund",
    ],
    "warranty": [
        "is my miner under warranty",
        "warranty period for an s19",
        "how many days of warranty do i get",
        "does the warranty cover the power supply",
        "warranty claim for a broken hashboard",
        "is a fan covered by the guarantee",
        "how long is the guarantee",
    ],
}


def test_an_epoch_deals_every_phrasing_once_with_a_positive_in_its_batch() -> None:
    groups = [[f"entry {e} text {i}" for i in range(size)] for e, size in enumerate([9, 2, 5, 13])]
    config = TrainConfig(entries_per_batch=3, phrasings_per_entry=4, max_phrasings_per_epoch=10)
    batches = _batches(groups, config, random.Random(0))
    dealt = [text for texts, _ in batches for text in texts]
    assert len(dealt) == len(set(dealt)) == 9 + 2 + 5 + 10
    assert Counter(text.split()[1] for text in dealt) == {"0": 9, "1": 2, "2": 5, "3": 10}
    for texts, labels in batches:
        counts = Counter(labels)
        assert len(counts) <= 3
        assert min(counts.values()) >= 2  # every anchor has a positive
        assert max(counts.values()) <= 5  # chunks of about phrasings_per_entry
        assert all(
            text.startswith(f"entry {label} ") for text, label in zip(texts, labels, strict=True)
        )


def test_the_loss_is_lower_when_an_entrys_phrasings_agree() -> None:
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    directions = torch.eye(3)[labels] + 0.05 * torch.randn(
        6, 3, generator=torch.Generator().manual_seed(0)
    )
    agreeing = _supervised_contrastive(directions, labels, 0.1)
    scrambled = _supervised_contrastive(directions, labels[[0, 2, 4, 1, 3, 5]], 0.1)
    assert float(agreeing) < float(scrambled)


@pytest.mark.model
def test_a_fine_tuned_model_pulls_an_entrys_phrasings_together_and_runs_on_onnx(
    tmp_path: Path,
) -> None:
    """On MiniLM, by name (MPNet trains the same way, in minutes: BENCHMARKS.md)."""
    out = tmp_path / "tuned"
    report = fine_tune(MINILM, KB, out, TrainConfig(epochs=4, learning_rate=1e-4), threads=2)
    assert (report.entries, report.phrasings) == (3, 21)
    assert trained_from(out) == MINILM
    tuned = Encoder(str(out))
    assert type(tuned._model) is OnnxModel  # the bot runs it like the shipped one

    def within_minus_between(encoder: Encoder) -> float:
        texts = [text for texts in KB.values() for text in texts]
        labels = np.repeat(np.arange(len(KB)), 7)
        similarity = encoder.encode(texts) @ encoder.encode(texts).T
        same = labels[:, None] == labels[None, :]
        np.fill_diagonal(same, False)
        different = labels[:, None] != labels[None, :]
        return float(similarity[same].mean() - similarity[different].mean())

    assert within_minus_between(tuned) > within_minus_between(Encoder(MINILM)) + 0.05


def test_the_bot_runs_the_fine_tuned_model_only_when_trained_from_the_configured_one(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.english_model() == ""  # nothing trained: the shipped model
    tuned = settings.tuned_model_dir
    tuned.mkdir(parents=True)
    (tuned / RECORD).write_text(json.dumps({"base": ""}))
    assert settings.english_model() == str(tuned)
    (tuned / RECORD).write_text(json.dumps({"base": "/models/other"}))
    assert settings.english_model() == ""  # trained from another model: not this one's
    settings.faq.model = "/models/other"
    assert settings.english_model() == str(tuned)


@pytest.mark.model
def test_faq_train_fine_tunes_on_the_kb_and_the_next_start_uses_it(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    entries = [
        {
            "id": entry_id,
            "category": "general",
            "question": texts[0],
            "alternates": texts[1:],
            "answer": f"The answer about {entry_id}.",
        }
        for entry_id, texts in KB.items()
    ]
    (kb / "general.yaml").write_text(json.dumps({"entries": entries}))  # JSON is YAML
    # MiniLM, to keep the test short: MPNet trains the same way.
    env = {**cli_env, "MINERDESK_FAQ__KB_PATH": str(kb), "MINERDESK_FAQ__MODEL": MINILM}

    def minerdesk(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )

    trained = minerdesk("faq", "train")
    assert trained.returncode == 0, trained.stderr
    tuned = Path(cli_env["MINERDESK_DATA_DIR"]) / "models" / "tuned"
    assert "fine-tuned on 21 phrasings of 3 entries" in trained.stdout
    assert trained_from(tuned) == MINILM
    asked = minerdesk("faq", "ask", "--json", "when does my miner get here")
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["entry_id"] == "shipping"
    log = (Path(cli_env["MINERDESK_DATA_DIR"]) / "minerdesk.log").read_text()
    assert f"faq.model english={tuned}" in log
