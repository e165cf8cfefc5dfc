"""The release: ``python -m build`` makes an sdist and, from it, a wheel; each
installs in a clean venv (no system site-packages, nothing of this checkout)
and imports, with its version, its type hints (py.typed) and its command.

It builds from a copy of the checkout's files as git sees them (tracked,
and new files not ignored): an ``apitx.egg-info`` left by ``pip install -e``
would otherwise feed setuptools a list of every file, and a package left out
of ``[tool.setuptools]`` would still ship as data of its parent. The build
runs ``--no-isolation`` when this environment has what the build
backend needs (the ``test`` extra brings ``build``; setuptools before 70
also needs ``wheel``), so it downloads nothing; otherwise pip's isolated
build fetches the backend. Installing fetches apitx's dependencies from the
package index (pip's cache makes a second run quick): the one thing this
test needs from outside, and it fails, never skips, without it.

It runs in the normal test command; ``-m "not packaging"`` leaves it out
(about 25 s with a warm pip cache).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import List

import pytest
from build import ProjectBuilder

import apitx

pytestmark = [pytest.mark.packaging,
              # setuptools 65 calls its [tool.setuptools] support beta: a note, not a fault.
              pytest.mark.filterwarnings("ignore:Support for `\\[tool.setuptools\\]`")]

ROOT = Path(__file__).resolve().parent.parent
#: What the installed package must say about itself, run by the venv's Python
#: in isolated mode (-I: no PYTHONPATH, no current directory on sys.path).
PROBE = ("import apitx, apitx.testing, os; "
         "print(apitx.__version__); print(os.path.dirname(apitx.__file__))")


def run(*command: str, cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def clean_copy(destination: Path) -> Path:
    """The checkout's files as a commit would hold them, in ``destination``."""
    listed = run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                 cwd=ROOT)
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():  # a tracked file deleted in the work tree is not
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    return destination


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel built from it, as ``python -m build`` makes them."""
    source = clean_copy(tmp_path_factory.mktemp("source"))
    out = tmp_path_factory.mktemp("dist")
    builder = ProjectBuilder(str(source))
    unmet = builder.check_dependencies("sdist") | builder.check_dependencies("wheel")
    run(sys.executable, "-m", "build", *([] if unmet else ["--no-isolation"]),
        "--outdir", str(out), str(source), cwd=out)
    return out


def only(directory: Path, pattern: str) -> Path:
    [found] = directory.glob(pattern)
    return found


def installed(artifact: Path, venv: Path) -> List[str]:
    """Install ``artifact`` in a new venv of its own; what the probe printed."""
    run(sys.executable, "-m", "venv", "--without-pip", str(venv), cwd=venv.parent)
    python = str(venv / "bin" / "python")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet",
        "--disable-pip-version-check", str(artifact), cwd=venv.parent)
    return run(python, "-I", "-c", PROBE, cwd=venv.parent).splitlines()


def test_the_wheel_holds_the_package_and_nothing_else(dist: Path) -> None:
    names = zipfile.ZipFile(only(dist, "*.whl")).namelist()
    assert {name.split("/")[0] for name in names} == {
        "apitx", f"apitx-{apitx.__version__}.dist-info"}
    assert "apitx/py.typed" in names and "apitx/_transports/_mock.py" in names


def test_the_sdist_holds_what_a_build_needs(dist: Path) -> None:
    with tarfile.open(only(dist, "*.tar.gz")) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"pyproject.toml", "setup.py", "README.md", "apitx/__init__.py",
            "apitx/_version.py", "apitx/py.typed"} <= names


@pytest.mark.parametrize("kind", ["*.whl", "*.tar.gz"], ids=["wheel", "sdist"])
def test_it_installs_and_imports_in_a_clean_venv(dist: Path, tmp_path: Path, kind: str) -> None:
    venv = tmp_path / "venv"
    version, where = installed(only(dist, kind), venv)
    assert version == apitx.__version__
    assert Path(where).is_relative_to(venv) and not Path(where).is_relative_to(ROOT)
    assert (Path(where) / "py.typed").exists()
    # The command the package declares, from the venv's own bin/.
    usage = run(str(venv / "bin" / "apitx"), "--help", cwd=tmp_path)
    assert usage.startswith("usage: apitx ")
    # Nothing leaked in from this machine's site-packages.
    assert not os.path.exists(venv / "lib" / f"python{sys.version_info[0]}."
                              f"{sys.version_info[1]}" / "site-packages" / "pytest")
