"""The README's configuration table names every setting the service reads."""

from __future__ import annotations

import msgspec

from service.settings import ENV_PREFIX, Settings
from tests.conftest import REPO_ROOT


def test_every_setting_is_documented() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = []
    for field in msgspec.structs.fields(Settings):
        name = "DATABASE_URL" if field.name == "database_url" else ENV_PREFIX + field.name.upper()
        if f"`{name}`" not in section:
            missing.append(name)
    assert missing == []
