"""The locked dependencies are in step with pyproject.toml: every dependency it names is pinned
in the lock files, to a version its range allows, with hashes (so `pip install
--require-hashes` can install them). A dependency changed in pyproject.toml without `make lock`
fails here."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME = [Requirement(text) for text in PROJECT["dependencies"]]
DEV = [Requirement(text) for text in PROJECT["optional-dependencies"]["dev"]]

# pip-compile's entries: `name==version \` then `--hash=sha256:...` lines.
_PIN = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})*)", re.M
)


def pins(lock: str) -> dict[str, tuple[Version, int]]:
    """{canonical name: (version, number of hashes)} of a lock file."""
    return {
        canonicalize_name(name): (Version(version), hashes.count("--hash="))
        for name, version, hashes in _PIN.findall((ROOT / lock).read_text())
    }


LOCKS = {
    "requirements.lock": RUNTIME,
    "requirements-dev.lock": RUNTIME + DEV,
}


def needed(requirement: Requirement) -> bool:
    return requirement.marker is None or requirement.marker.evaluate()


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_dependency_is_pinned_within_its_range(lock: str) -> None:
    pinned = pins(lock)
    wrong = []
    for requirement in filter(needed, LOCKS[lock]):
        name = canonicalize_name(requirement.name)
        if name not in pinned:
            wrong.append(f"{requirement}: not in {lock}")
        elif not requirement.specifier.contains(pinned[name][0], prereleases=True):
            wrong.append(f"{requirement}: {lock} pins {pinned[name][0]}")
    assert not wrong, "run `make lock`: " + "; ".join(wrong)


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_pin_has_hashes(lock: str) -> None:
    text = (ROOT / lock).read_text()
    entries = re.findall(r"^[A-Za-z0-9][^\s#]*", text, re.M)
    assert entries and all("==" in entry for entry in entries), "only exact pins"
    assert all(hashes >= 1 for _, hashes in pins(lock).values())
    assert len(pins(lock)) == len(entries)
    # Nothing that ties the file to one machine's package sources.
    assert not re.search(r"^\s*(-e|--index-url|--extra-index-url|--find-links|-f)\b", text, re.M)


def test_extras_are_locked_too() -> None:
    """`psycopg[binary]` needs `psycopg-binary`: the lock names the extras' packages (from the
    installed distribution's metadata, which the lock installed)."""
    pinned = pins("requirements.lock")
    for requirement in filter(needed, RUNTIME):
        for extra in requirement.extras:
            for text in metadata.requires(requirement.name) or []:
                dependency = Requirement(text)
                if dependency.marker and dependency.marker.evaluate({"extra": extra}):
                    assert canonicalize_name(dependency.name) in pinned, (
                        f"{requirement.name}[{extra}] needs {dependency.name}: run `make lock`"
                    )


def test_development_keeps_the_runtime_pins() -> None:
    """What the tests run on is what the image runs."""
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert {name: dev.get(name) for name in runtime} == runtime


def test_installs_go_through_the_locks() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet --require-hashes -r requirements-dev.lock" in makefile
    assert "pip install --quiet --no-deps -e ." in makefile
    assert re.search(r"^\$\(VENV\)/\.installed: .*requirements-dev\.lock", makefile, re.M)
    assert re.search(r"^lock:", makefile, re.M)
