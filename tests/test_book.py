"""The HTML book builds strictly and every chapter page carries its executed outputs."""

from __future__ import annotations

import re

import pytest

from conftest import CHAPTERS, ROOT

# The budget is 40 s per chapter on two cores from an empty cache; `make timings` measures it and flags a
# chapter over it (issue 13 tracks it: the book does not meet it yet). Wall times move with the machine:
# the same chapters have run in 11-60 s on one machine and up to 130 s on a CI machine. So this test only
# guards against a chapter that runs away, in two ways a machine twice as slow cannot break:
# - no chapter over 300 s, more than twice the slowest chapter seen on any CI machine (130 s);
# - no chapter over three times the book's median chapter, a ratio the machine cancels out of (the slowest
#   chapter has run about 1.3 times the median).
CHAPTER_GUARD_SECONDS = 300
CHAPTER_GUARD_RATIO_TO_MEDIAN = 3


@pytest.fixture(scope="module")
def chapter_pages(built_book):
    return {path.stem: built_book / "chapters" / f"{path.stem}.html" for path in CHAPTERS}


def test_every_page_of_the_toc_was_built(built_book, chapter_pages):
    assert (built_book / "index.html").exists()
    assert (built_book / "intro.html").exists()
    for stem, page in chapter_pages.items():
        assert page.exists(), f"no page for {stem}"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_chapter_page_shows_executed_figures_and_no_errors(built_book, path):
    html = (built_book / "chapters" / f"{path.stem}.html").read_text()
    images = re.findall(r'<img[^>]+src="([^"]+\.png)"', html)
    if not path.name.startswith("9"):
        assert images, f"{path.name}: no figures on the page"
    for src in images:
        assert (built_book / "chapters" / src).resolve().exists(), f"{path.name}: missing image {src}"
    assert "svg+xml" not in html, f"{path.name}: SVG figure output"
    # Errors are only allowed in cells tagged raises-exception (the troubleshooting appendix).
    error_blocks = html.count('class="output traceback')
    tagged = html.count("tag_raises-exception")
    assert error_blocks <= tagged, f"{path.name}: a traceback outside a raises-exception cell"
    assert "output stderr" not in html, f"{path.name}: stderr on the page"


def test_no_chapter_runs_away(built_book):
    import statistics

    from jupyter_cache import get_cache

    cache = get_cache(ROOT / "_build" / ".jupyter_cache")
    timings = {}
    for record in cache.list_cache_records():
        seconds = record.data.get("execution_seconds")
        if seconds is not None:
            timings[record.uri] = seconds
    seconds_by_chapter = {}
    for path in CHAPTERS:
        matching = [seconds for uri, seconds in timings.items() if uri.endswith(path.name)]
        assert matching, f"no execution record for {path.name}"
        seconds_by_chapter[path.name] = min(matching)
    median = statistics.median(seconds_by_chapter.values())
    table = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in seconds_by_chapter.items())
    for name, seconds in seconds_by_chapter.items():
        assert seconds < CHAPTER_GUARD_SECONDS, f"{name} took {seconds:.0f} s ({table})"
        assert seconds < CHAPTER_GUARD_RATIO_TO_MEDIAN * median, (
            f"{name} took {seconds / median:.1f} times the median chapter ({median:.0f} s; {table})"
        )


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_every_chapter_has_references_and_cites_them(built_book, path):
    # The bibliography lists only what a page cites, so a chapter that cites nothing shows an empty section.
    html = (built_book / "chapters" / f"{path.stem}.html").read_text()
    start = html.find('id="references"')
    assert start >= 0, f"{path.name}: no References section"
    end = html.find("<section", start)
    section = html[start : end if end > 0 else None]
    assert 'role="doc-biblioentry"' in section, f"{path.name}: an empty References section"
