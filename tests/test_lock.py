"""The lock files agree with requirements*.txt, with each other, and with what this environment runs."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _requirements(name: str) -> list[Requirement]:
    """The requirements of a requirements file, following ``-r`` includes."""
    found = []
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found += _requirements(line[3:].strip())
        elif line:
            found.append(Requirement(line))
    return found


def _pins(name: str) -> dict[str, Version]:
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)$", line.strip())
        if match:
            pins[canonicalize_name(match[1])] = Version(match[2])
    return pins


@pytest.mark.parametrize("requirements", ["requirements.txt", "requirements-dev.txt"])
def test_every_requirement_is_pinned_within_its_range(requirements: str) -> None:
    pins = _pins(requirements.replace(".txt", ".lock"))
    for requirement in _requirements(requirements):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in the lock: run tools/lock.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"the lock pins {name}=={pins[name]}, outside {requirement}: run tools/lock.sh"


def test_the_lock_lists_no_requirement_that_was_dropped() -> None:
    lock = (ROOT / "requirements-dev.lock").read_text()
    top_level = {canonicalize_name(r.name) for r in _requirements("requirements-dev.txt")}
    # pip-compile marks a top-level requirement "# via -r <file>" on the line after its pin.
    direct = re.findall(r"^([A-Za-z0-9_.\-]+)==\S+\n(?:\s+# via\n)?(?:\s+#\s+.*\n)*?\s+#\s+(?:via )?-r ", lock, re.M)
    assert {canonicalize_name(name) for name in direct} == top_level


def test_runtime_and_test_locks_pin_the_same_runtime() -> None:
    runtime, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    assert {name: dev.get(name) for name in runtime} == runtime


def test_this_environment_runs_the_locked_versions() -> None:
    wrong = {}
    for name, version in {**_pins("requirements-dev.lock"), **_pins("requirements-peers.txt")}.items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            wrong[name] = "missing"
            continue
        if Version(installed.base_version if name == "torch" else str(installed)) != version:
            wrong[name] = str(installed)  # torch: the CPU build's local label (+cpu) is the same release
    assert not wrong, f"installed versions differ from the lock {wrong}: run tools/setup_venv.sh requirements-dev.txt"
