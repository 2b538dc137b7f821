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
