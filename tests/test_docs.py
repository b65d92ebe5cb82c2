"""The guides stay true to the tree: every relative link in the README and docs/ leads to a file."""

import re

from conftest import ROOT

LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_every_relative_link_in_the_guides_resolves():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "models").glob("*/README.md"))]
    checked = 0
    for page in pages:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address or a place on the same page
            assert (page.parent / target.split("#")[0]).exists(), f"{page.relative_to(ROOT)} links to {target}"
            checked += 1
    assert checked >= 3
