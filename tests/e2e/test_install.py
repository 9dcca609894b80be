"""Hub installs beside the projects whose import names its folders share.

The repository keeps `channels/`, `templates/`, `preferences/` and `workers/` at the top, but
Hub installs them as `hub.channels` and so on: `channels` on PyPI is Django Channels. A wheel
of this checkout goes into a fresh virtualenv with Django Channels, and both are imported and
used there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import channels, django
from channels.layers import InMemoryChannelLayer  # Django Channels itself, working
import hub.channels.base, hub.templates, hub.preferences.resolver, hub.workers.engine
from importlib.metadata import entry_points
assert channels.__file__.split("site-packages")[1].startswith("/channels/"), channels.__file__
assert InMemoryChannelLayer.__module__ == "channels.layers"
names = sorted(e.name for e in entry_points(group="hub.channels"))
assert names == ["capture", "smtp", "twilio-sms", "twilio-voice", "webhook"], names
from hub.channels.registry import adapter_class
print("ok", channels.__version__, adapter_class("smtp").__name__)
"""


def run(*command: str | Path, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout


def test_hub_installs_beside_django_channels(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: setuptools leaves build/ where it builds
    skipped = shutil.ignore_patterns(".*", "var", "build", "*.egg-info", "__pycache__", "tests")
    shutil.copytree(ROOT, source, symlinks=True, ignore=skipped)
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, source)
    (wheel,) = wheels.glob("hub-*.whl")
    env = tmp_path / "env"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", wheel, "channels>=4")
    answer = run(python, "-c", PROBE, cwd=tmp_path)  # not from the checkout's folder
    assert answer.startswith("ok "), answer
    assert answer.split()[-1] == "EmailChannel"
