"""The modified date as epoch ms (read as numbers, judged only above the page's running
maximum) gives the same watermark and the same future-date reports as judging every
stamp as text."""

from __future__ import annotations

from dataclasses import dataclass

from watcher.dates import format_utc, from_epoch_ms, number_to_date
from watcher.poll.intake import Oddities, read_records

DAY = 86_400_000
NOW = 1_790_000_000_000
CEILING = format_utc(from_epoch_ms(NOW))


@dataclass
class Counts:
    skipped: int = 0
    duplicates: int = 0
    future: int = 0


def _read(stamps: list[object], top: str | None = None) -> tuple[str | None, list[str], int]:
    odd = Oddities(Counts(), "companies", "p", "Gsid")
    records = [{"Gsid": f"k{i}", "ModifiedDate": s} for i, s in enumerate(stamps)]
    page = read_records(
        records, odd, modified_field="ModifiedDate", top=top, ceiling=CEILING, page=1
    )
    return page.top, odd.future_keys, odd.counts.future


def _by_text(stamps: list[object], top: str | None = None) -> tuple[str | None, list[str], int]:
    """The reference: every stamp turned into text and judged."""
    future: list[str] = []
    for i, stamp in enumerate(stamps):
        text = number_to_date(stamp) if not isinstance(stamp, str) else stamp
        if type(text) is str and (top is None or text > top):
            if text > CEILING:
                future.append(f"k{i}")
            else:
                top = text
    return top, future[:5], len(future)


def test_epoch_ms_stamps_give_the_watermark_and_future_reports_of_text() -> None:
    cases: list[list[object]] = [
        [NOW - 3 * DAY, NOW - DAY, NOW - 2 * DAY, NOW - DAY],
        [NOW + DAY, NOW - DAY, NOW + 2 * DAY, NOW - 5 * DAY, NOW + DAY // 2, NOW],
        [7, NOW - DAY, 99_999_999_999_999, None, NOW - 2 * DAY, True],
        [NOW - DAY, "2026-01-01T00:00:00Z", NOW - 9 * DAY, NOW + 1],
    ]
    for stamps in cases:
        assert _read(stamps) == _by_text(stamps), stamps
        high = format_utc(from_epoch_ms(NOW - 2 * DAY))
        assert _read(stamps, top=high) == _by_text(stamps, top=high), stamps
