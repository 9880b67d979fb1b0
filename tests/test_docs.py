"""The README is a short manual whose links hold; the reference pages it links exist and are current."""

from __future__ import annotations

import re

from api.config import REPO_ROOT

README = REPO_ROOT / "README.md"
DOCS = REPO_ROOT / "docs"


def test_readme_is_a_short_manual_starting_with_the_two_commands():
    text = README.read_text()
    assert len(text.splitlines()) <= 160, "README.md is the user's manual: the reference belongs in docs/"
    first_block = text.split("```bash", 1)[1].split("```", 1)[0]
    assert "scripts/run.sh" in first_block and "scripts/test.sh" in first_block


def test_every_local_link_of_the_readme_and_the_docs_resolves():
    broken = []
    for page in [README, *sorted(DOCS.glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO_ROOT)} -> {target}")
    assert not broken, broken


def test_every_docs_page_is_linked_from_the_readme_and_has_no_placeholder():
    readme = README.read_text()
    for page in sorted(DOCS.glob("*.md")):
        assert f"docs/{page.name}" in readme, f"README.md does not link docs/{page.name}"
        assert "TODO" not in page.read_text(), f"docs/{page.name} still holds a TODO"
