"""The README stays true to the code: every setting is documented, and the test command
that .ci/run calls is the one the README gives."""

from __future__ import annotations

from pathlib import Path

from firewarden.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_readme() -> None:
    for name in Settings.model_fields:
        variable = f"{ENV_PREFIX}{name}"
        short = variable.rsplit("_", 1)[0]
        assert variable in README or f"`{short}_" in README, f"{variable} is not documented"


def test_ci_runs_the_readme_test_command() -> None:
    assert "scripts/test" in README and "scripts/demo" in README
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()
