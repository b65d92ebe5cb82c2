"""The guides stay true to the tree: every relative link in the README and docs/ leads to a
file (and, for a Markdown page, to a heading it has), and the README stays a newcomer's page."""

import re

from conftest import ROOT

LINK = re.compile(r"\]\(([^)\s]+)\)")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "models").glob("*/README.md")),
         ROOT / "studies" / "README.md"]


def anchors(page) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    heads = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


def test_every_relative_link_in_the_guides_resolves():
    checked = 0
    for page in PAGES:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            path, _, anchor = target.partition("#")
            linked = (page.parent / path) if path else page
            assert linked.exists(), f"{page.relative_to(ROOT)} links to {target}"
            if anchor and linked.suffix == ".md":
                assert anchor in anchors(linked), f"{page.relative_to(ROOT)} links to {target}: no such heading"
            checked += 1
    assert checked >= 20


def test_the_readme_is_one_short_page_that_points_at_every_guide():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) <= 15_000
    for guide in sorted((ROOT / "docs").glob("*.md")):
        assert f"docs/{guide.name}" in readme, f"README does not point at docs/{guide.name}"
    for command in ("bash scripts/run", "bash scripts/test"):
        assert command in readme


def test_every_default_the_configuration_guide_states_is_configs():
    # docs/architecture.md said reader_candidates was 8 while Config said 10; this page is
    # where defaults are stated, and each one it gives must be the code's.
    import dataclasses

    from qa.config import Config

    defaults = {f.name: f.default for f in dataclasses.fields(Config)}
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    checked, named = 0, set()
    for names, stated in re.findall(r"^\| ((?:`\w+`(?:, )?)+) \| ([^|]+) \|", page, flags=re.M):
        keys = re.findall(r"`(\w+)`", names)
        values = [v.strip().strip("`") for v in stated.split(",")] if len(keys) > 1 else [stated.strip().strip("`")]
        named.update(keys)
        for key, value in zip(keys, values):
            assert key in defaults, f"docs/configuration.md names {key!r}, which Config has not"
            want = defaults[key]
            if value == "empty":
                assert want == "", key
            elif isinstance(want, bool | int | float) and re.fullmatch(r"[\d.]+", value):
                assert float(value) == float(want), f"{key}: the guide says {value}, Config {want}"
            elif isinstance(want, str) and " " not in value and "/" not in value and "$" not in value:
                assert value == want, f"{key}: the guide says {value!r}, Config {want!r}"
            else:
                continue
            checked += 1
    assert checked >= 40 and named == set(defaults), sorted(set(defaults) - named)
