"""The workshop page: a three-hour schedule that agrees with the chapters, and the machine check."""

from __future__ import annotations

import json
import re

from conftest import CHAPTERS, ROOT

TEACHING = ROOT / "teaching.md"
WORKSHOP_MINUTES = 180
ROW = re.compile(r"^\|\s*(\d+):(\d\d)\s*\|\s*(\d+)\s*\|\s*([^|]*?)\s*\|", re.M)


def schedule() -> list[tuple[int, int, str]]:
    """(start minute, minutes, block) for each row of the schedule table."""
    return [(int(h) * 60 + int(m), int(minutes), block) for h, m, minutes, block in ROW.findall(TEACHING.read_text())]


def chapter_box_minutes(path) -> int:
    first = "".join(json.loads(path.read_text())["cells"][0]["source"])
    match = re.search(r"\*\*Time\*\*\s+about\s+(\d+)\s+minutes", first)
    assert match, f"{path.name}: no '**Time** about NN minutes' in the opening box"
    return int(match.group(1))


def test_schedule_fills_three_hours_without_gaps():
    rows = schedule()
    assert len(rows) >= 9, "the schedule table was not found"
    assert rows[0][0] == 0
    for (start, minutes, block), (next_start, _, _) in zip(rows, rows[1:]):
        assert start + minutes == next_start, f"{block!r} ends at minute {start + minutes}, the next starts at {next_start}"
    assert rows[-1][0] + rows[-1][1] == WORKSHOP_MINUTES
    assert sum(1 for _, _, block in rows if block.lower().startswith("break")) >= 2


def test_schedule_has_every_chapter_with_the_minutes_of_its_box():
    scheduled = {}
    for _, minutes, block in schedule():
        for doc in re.findall(r"\{doc\}`chapters/([^`]+)`", block):
            scheduled[doc] = minutes
    chapters = [path for path in CHAPTERS if not path.name.startswith("9")]  # 9x: appendices, no slot
    assert chapters
    for path in chapters:
        assert path.stem in scheduled, f"{path.stem} is not in the schedule"
        assert scheduled[path.stem] == chapter_box_minutes(path), (
            f"{path.stem}: {scheduled[path.stem]} minutes in the schedule, "
            f"{chapter_box_minutes(path)} in the chapter's opening box"
        )


def test_the_machine_check_is_documented_where_learners_look():
    assert "python -m gmm_utils.check" in TEACHING.read_text()
    assert "gmm_utils.check" in (ROOT / "README.md").read_text(), "document the machine check in the README"
