"""The workshop page: two schedules that agree with the chapters, and the machine check."""

from __future__ import annotations

import json
import re

import pytest

from conftest import CHAPTERS, ROOT

TEACHING = ROOT / "teaching.md"
#: The two tracks: the heading of each schedule's section and its length in minutes.
TRACKS = {"Core workshop: three hours": 180, "Full day: six hours": 360}
ROW = re.compile(r"^\|\s*(\d+):(\d\d)\s*\|\s*(\d+)\s*\|\s*([^|]*?)\s*\|", re.M)


def schedule(track: str) -> list[tuple[int, int, str]]:
    """(start minute, minutes, block) for each row of one track's schedule table."""
    text = TEACHING.read_text()
    assert f"### {track}" in text, f"teaching.md has no section '### {track}'"
    section = text.split(f"### {track}", 1)[1].split("\n#", 1)[0]
    return [(int(h) * 60 + int(m), int(minutes), block) for h, m, minutes, block in ROW.findall(section)]


def chapter_box_minutes(path) -> int:
    first = "".join(json.loads(path.read_text())["cells"][0]["source"])
    match = re.search(r"\*\*Time\*\*\s+about\s+(\d+)\s+minutes", first)
    assert match, f"{path.name}: no '**Time** about NN minutes' in the opening box"
    return int(match.group(1))


def scheduled_chapters(track: str) -> dict[str, int]:
    scheduled = {}
    for _, minutes, block in schedule(track):
        for doc in re.findall(r"\{doc\}`chapters/([^`]+)`", block):
            scheduled[doc] = minutes
    return scheduled


CHAPTER_PATHS = [path for path in CHAPTERS if not path.name.startswith("9")]  # 9x: appendices, no slot


@pytest.mark.parametrize("track", TRACKS)
def test_schedule_fills_its_time_without_gaps(track):
    rows = schedule(track)
    assert len(rows) >= 9, f"the schedule table of '{track}' was not found"
    assert rows[0][0] == 0
    for (start, minutes, block), (next_start, _, _) in zip(rows, rows[1:]):
        assert start + minutes == next_start, f"{block!r} ends at minute {start + minutes}, the next starts at {next_start}"
    assert rows[-1][0] + rows[-1][1] == TRACKS[track]
    assert sum(1 for _, _, block in rows if block.lower().startswith(("break", "lunch"))) >= 2


@pytest.mark.parametrize("track", TRACKS)
def test_every_scheduled_chapter_gets_the_minutes_of_its_box(track):
    boxes = {path.stem: chapter_box_minutes(path) for path in CHAPTER_PATHS}
    scheduled = scheduled_chapters(track)
    assert scheduled, f"no chapter in '{track}'"
    for stem, minutes in scheduled.items():
        assert stem in boxes, f"'{track}' schedules {stem}, which is not a chapter"
        assert minutes == boxes[stem], f"{stem}: {minutes} minutes in '{track}', {boxes[stem]} in the chapter's box"


def test_the_full_day_has_every_chapter_and_the_core_has_part_one():
    assert CHAPTER_PATHS
    full_day = scheduled_chapters("Full day: six hours")
    missing = [path.stem for path in CHAPTER_PATHS if path.stem not in full_day]
    assert not missing, f"not in the full day: {missing}"
    core = scheduled_chapters("Core workshop: three hours")
    part_one = [path.stem for path in CHAPTER_PATHS if int(path.name[:2]) <= 8]
    assert part_one and all(stem in core for stem in part_one), "the core workshop must teach all of Part I"


def test_the_machine_check_is_documented_where_learners_look():
    assert "python -m gmm_utils.check" in TEACHING.read_text()
    assert "gmm_utils.check" in (ROOT / "README.md").read_text(), "document the machine check in the README"
