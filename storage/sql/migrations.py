"""A backend's versioned schema: numbered SQL files shipped in its package."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from importlib import resources
from typing import overload


class Migrations(Sequence[str]):
    """A schema's migration scripts, `migrations/NNNN_<what>.sql` in `package`, in order:
    version N is the first N applied. Read on first use, not at import."""

    def __init__(self, package: str) -> None:
        self.package = package

    @cached_property
    def _files(self) -> tuple[tuple[str, str], ...]:
        folder = resources.files(self.package).joinpath("migrations")
        files = sorted(
            (item for item in folder.iterdir() if item.name.endswith(".sql")),
            key=lambda item: item.name,
        )
        for version, item in enumerate(files, start=1):
            # A gap or a repeated number would shift every later version.
            if not item.name.startswith(f"{version:04d}_"):
                raise RuntimeError(f"migration {item.name} should be number {version:04d}")
        return tuple((item.name, item.read_text(encoding="utf-8")) for item in files)

    def name(self, version: int) -> str:
        """The file name of migration `version` (1 is the first)."""
        return self._files[version - 1][0]

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [script for _, script in self._files[index]]
        return self._files[index][1]

    def __len__(self) -> int:
        return len(self._files)
