"""The ONNX Runtime BERT runner computes what sentence-transformers does, keeps its graph for
the next start, and knows what it cannot run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from faq.bert import OnnxBert
from faq.encoder import Encoder, default_model_path

# Every test here loads the model itself, some in a fresh interpreter.
pytestmark = [pytest.mark.model, pytest.mark.subprocess]

# Short, empty, blank, Cyrillic, Chinese, emoji, identifiers, and one past the 256-token cut.
TEXTS = [
    "how long is the warranty on an s19",
    "",
    "   ",
    "привет, где мой заказ?",
    "保修期多久",
    "🙂 hi!!!",
    "S19j Pro 104TH/s hashboard #3 dead; PSU APW12 voltage 12.3V",
    "the fans are loud and " * 120,
]


def model_copy(tmp_path: Path) -> Path:
    """The default model's folder, editable, sharing the weights file."""
    source, copy = default_model_path(), tmp_path / "model"
    copy.mkdir()
    for item in source.iterdir():
        if item.is_dir():
            (copy / item.name).mkdir()
            for inner in item.iterdir():
                (copy / item.name / inner.name).write_bytes(inner.read_bytes())
        elif item.suffix == ".safetensors":
            (copy / item.name).symlink_to(item)
        else:
            (copy / item.name).write_bytes(item.read_bytes())
    return copy


def edit_json(path: Path, **changes: object) -> None:
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))


def reference(folder: Path) -> np.ndarray:
    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    return model.encode(TEXTS, normalize_embeddings=True)


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_mean_pooling_matches_sentence_transformers() -> None:
    bert = OnnxBert.load(default_model_path(), threads=1)
    assert bert is not None
    assert bert.pooling == "mean"
    ours = unit(bert.encode(TEXTS))
    np.testing.assert_allclose(ours, reference(default_model_path()), atol=1e-5)


def test_cls_pooling_matches_sentence_transformers(tmp_path: Path) -> None:
    folder = model_copy(tmp_path)
    edit_json(
        folder / "1_Pooling" / "config.json",
        pooling_mode_mean_tokens=False,
        pooling_mode_cls_token=True,
    )
    bert = OnnxBert.load(folder, threads=1)
    assert bert is not None
    assert bert.pooling == "cls"
    np.testing.assert_allclose(unit(bert.encode(TEXTS)), reference(folder), atol=1e-5)


def test_a_batch_longer_than_one_pass_keeps_every_text_in_its_row() -> None:
    bert = OnnxBert.load(default_model_path(), threads=1)
    assert bert is not None
    texts = [f"order {i} shipped from warehouse {'far ' * (i % 40)}" for i in range(300)]
    together = bert.encode(texts)
    alone = np.stack([bert.encode([text])[0] for text in texts[::37]])
    np.testing.assert_allclose(unit(together[::37]), unit(alone), atol=1e-5)


@pytest.mark.parametrize(
    ("file", "change"),
    [
        ("config.json", {"model_type": "mpnet"}),
        ("config.json", {"hidden_act": "relu"}),
        ("config.json", {"position_embedding_type": "relative_key"}),
        ("1_Pooling/config.json", {"pooling_mode_max_tokens": True}),
        ("sentence_bert_config.json", {"do_lower_case": True}),
    ],
)
def test_a_model_of_another_shape_is_left_to_sentence_transformers(
    tmp_path: Path, file: str, change: dict[str, object]
) -> None:
    folder = model_copy(tmp_path)
    edit_json(folder / file, **change)
    assert OnnxBert.load(folder, threads=1) is None


def test_an_extra_module_or_a_missing_file_is_left_to_sentence_transformers(
    tmp_path: Path,
) -> None:
    folder = model_copy(tmp_path)
    modules = json.loads((folder / "modules.json").read_text())
    dense = {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}
    (folder / "modules.json").write_text(json.dumps([*modules, dense]))
    assert OnnxBert.load(folder, threads=1) is None
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "tokenizer.json").unlink()
    assert OnnxBert.load(folder, threads=1) is None


def test_a_folder_it_cannot_run_still_loads_through_sentence_transformers(
    tmp_path: Path,
) -> None:
    folder = model_copy(tmp_path)
    (folder / "tokenizer.json").unlink()  # sentence-transformers rebuilds it from vocab.txt
    fallback = Encoder(str(folder))
    default = Encoder()
    np.testing.assert_allclose(
        fallback.encode_queries(TEXTS[:4]), default.encode_queries(TEXTS[:4]), atol=1e-5
    )


def test_the_default_model_answers_without_importing_torch() -> None:
    check = (
        "import sys\n"
        "from faq.encoder import Encoder\n"
        "vectors = Encoder().encode_queries(['where is my order'])\n"
        "assert vectors.shape == (1, 384), vectors.shape\n"
        "loaded = {'torch', 'sentence_transformers', 'transformers'} & set(sys.modules)\n"
        "sys.exit(f'loaded {sorted(loaded)}' if loaded else 0)\n"
    )
    result = run_python(check)
    assert result.returncode == 0, result.stdout + result.stderr


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_graph_is_stored_so_a_later_start_neither_builds_it_nor_imports_onnx(
    tmp_path: Path,
) -> None:
    check = (
        "import sys\n"
        "from pathlib import Path\n"
        "from faq.encoder import Encoder\n"
        f"encoder = Encoder(cache_dir=Path({str(tmp_path)!r}))\n"
        "vector = encoder.encode_queries(['where is my order'])\n"
        "print('onnx' in sys.modules, repr(vector[0, :4].tolist()))\n"
    )
    first, second = run_python(check), run_python(check)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    built, first_vector = first.stdout.split(maxsplit=1)
    reused, second_vector = second.stdout.split(maxsplit=1)
    assert (built, reused) == ("True", "False")
    assert first_vector == second_vector
    assert [path.suffix for path in tmp_path.glob("bert-*")] == [".onnx"]


def test_an_unreadable_stored_graph_is_rebuilt_and_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    graph = tmp_path / "bert.onnx"
    graph.write_bytes(b"half a file")
    bert = OnnxBert.load(default_model_path(), threads=1, graph_file=graph)
    assert bert is not None
    assert "faq.graph_unreadable" in caplog.text
    expected = OnnxBert.load(default_model_path(), threads=1)
    assert expected is not None
    np.testing.assert_allclose(bert.encode(TEXTS[:1]), expected.encode(TEXTS[:1]), atol=1e-6)
    assert graph.stat().st_size > 10_000_000  # the whole model, weights inside
