"""``platform/`` is a source root, never a package: the standard library's ``platform`` wins."""

from __future__ import annotations

import platform
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()


def test_platform_folder_is_not_a_package() -> None:
    assert (ROOT / "platform" / "dropstream").is_dir()
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_import_platform_is_the_standard_library() -> None:
    assert Path(platform.__file__).resolve().parent == STDLIB


def test_import_platform_from_the_repository_root_is_the_standard_library() -> None:
    # The repository root first on sys.path is exactly where a platform/__init__.py would shadow it.
    result = subprocess.run(
        [sys.executable, "-c", "import platform; print(platform.__file__)"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    assert Path(result.stdout.strip()).resolve().parent == STDLIB
