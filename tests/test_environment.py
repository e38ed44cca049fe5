"""environment.yml (conda) cannot be installed here, so it is kept in step with pyproject.toml
by reading both: every core dependency is there with a compatible lower bound, every extra is
installed, and nothing in it is unknown to pyproject.toml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from the package index's
CONDA_NAMES = {"pytorch": "torch", "py-opencv": "opencv-python"}
# conda packages that are the environment itself rather than dependencies of dlnd
TOOLS = {"python", "pip"}


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def environment() -> tuple[list[str], list[str]]:
    """(conda dependencies, pip dependencies) of environment.yml."""
    spec = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    conda = [d for d in spec["dependencies"] if isinstance(d, str)]
    pip = [p for d in spec["dependencies"] if isinstance(d, dict) for p in d.get("pip", [])]
    return conda, pip


def conda_requirement(text: str) -> Requirement:
    """A conda match spec (``numpy>=1.24``, ``python=3.11``) as a PEP 508 requirement."""
    name, rest = re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", text).groups()
    rest = re.sub(r"(?<![<>=!~])=(?!=)", "==", rest)  # conda's "=3.11" means "3.11.*"
    if rest.startswith("==") and not rest.endswith(".*"):
        rest += ".*"
    return Requirement(f"{CONDA_NAMES.get(name, name)}{rest}")


def declared() -> dict[str, Requirement]:
    """Every requirement of pyproject.toml (core and extras) by canonical name."""
    project = pyproject()["project"]
    texts = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        texts += extra
    return {canonicalize_name(r.name): r for r in map(Requirement, texts)}


def lowest_allowed(specifier: SpecifierSet) -> Version | None:
    """The lower bound a specifier sets (>=, ==, ~=), or None."""
    bounds = [
        Version(s.version.rstrip(".*"))
        for s in specifier
        if s.operator in (">=", "==", "~=", "===")
    ]
    return max(bounds) if bounds else None


def environment_requirements() -> dict[str, Requirement]:
    conda, pip = environment()
    found = {}
    for text in conda:
        requirement = conda_requirement(text)
        if requirement.name not in TOOLS:
            found[canonicalize_name(requirement.name)] = requirement
    for text in pip:
        if not text.startswith("-e"):
            requirement = Requirement(text)
            found[canonicalize_name(requirement.name)] = requirement
    return found


def test_every_core_dependency_is_in_the_environment():
    env = environment_requirements()
    core = [Requirement(text) for text in pyproject()["project"]["dependencies"]]
    missing = [r.name for r in core if canonicalize_name(r.name) not in env]
    assert not missing, f"environment.yml lacks core dependencies {missing}"


@pytest.mark.parametrize("name", sorted(environment_requirements()))
def test_environment_versions_are_allowed_by_pyproject(name):
    """The environment pins a lower bound, and that version satisfies pyproject.toml."""
    ours, theirs = environment_requirements()[name], declared().get(name)
    assert theirs is not None, f"environment.yml installs {name}, which pyproject.toml lacks"
    low = lowest_allowed(ours.specifier)
    assert low is not None, f"environment.yml gives {name} no lower bound ({ours})"
    if theirs.specifier:
        assert theirs.specifier.contains(low, prereleases=True), (
            f"environment.yml allows {name} {low}, but pyproject.toml asks for {theirs.specifier}"
        )
        assert low >= lowest_allowed(theirs.specifier), (name, ours, theirs)


def test_every_extra_is_installed_by_the_environment():
    _, pip = environment()
    editable = [p for p in pip if p.startswith("-e")]
    assert len(editable) == 1, "environment.yml should install dlnd itself once, with -e"
    extras = set(re.search(r"\[(.*)\]", editable[0]).group(1).split(","))
    wanted = set(pyproject()["project"]["optional-dependencies"])
    assert extras == wanted, f"environment.yml installs extras {extras}, pyproject has {wanted}"


def test_the_environments_python_is_supported():
    conda, _ = environment()
    python = next(conda_requirement(d) for d in conda if d.startswith("python"))
    supported = SpecifierSet(pyproject()["project"]["requires-python"])
    assert supported.contains(lowest_allowed(python.specifier))
