"""`spillway status`, pure part and refresh loop: rows from the admin listing, trouble, the table."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from origin.ops.status import ListingError, Trouble, render_table, rows_from_listing
from origin.ops.status_cli import StatusError, admin_token, watch


def room(rid: str, **publishing: object) -> dict[str, object]:
    pub = {"state": "live", "session": "20261202t000000z-aaaa1111", "renditions": ["a48", "a64"],
           "live_edge_age_s": 0.4, "segment_s": 1.0, "publish_p99_s": 0.05, "backlog": 0, "fillers_in_tail": 0,
           **publishing}  # fmt: skip
    return {"id": rid, "realtime_cap": 2, "seats_taken": 1, "hls_listeners_recent": 12, "publishing": pub}


def test_rows_and_trouble() -> None:
    rows = {r.room: r for r in rows_from_listing({"rooms": [
        room("fine"),
        room("stalled", live_edge_age_s=2.5),
        room("gone", session=None, fillers_in_tail=3),
        room("storage", backlog=31),
        room("slow", publish_p99_s=0.8),
        room("over", state="ended", live_edge_age_s=900.0, session=None),
        {"id": "never", "realtime_cap": 0, "publishing": None},
    ]})}  # fmt: skip
    assert rows["fine"].trouble is Trouble.OK and rows["fine"].notes == ()
    assert rows["stalled"].trouble is Trouble.BAD and rows["stalled"].notes == ("STALLED 2s",)
    assert rows["gone"].trouble is Trouble.WARN and rows["gone"].notes == ("source gone", "filler on air")
    assert rows["storage"].trouble is Trouble.BAD and "storage backlog" in rows["storage"].notes
    assert rows["slow"].trouble is Trouble.WARN and rows["slow"].notes == ("p99 over budget",)
    assert rows["over"].trouble is Trouble.OK  # an ended room's edge does not advance, by design
    assert rows["never"].state == "idle" and rows["never"].renditions == ()
    assert rows["stalled"].to_json()["trouble"] == "BAD"


@pytest.mark.parametrize("doc", [[], {"rooms": {}}, {"rooms": [{"no": "id"}]}, {"rooms": [room("x", backlog="3")]},
                                 {"rooms": [room("x", renditions="a48")]}])  # fmt: skip
def test_a_listing_that_is_not_one_is_refused(doc: object) -> None:
    with pytest.raises(ListingError):
        rows_from_listing(doc)


def test_table_puts_trouble_first_and_colours_only_when_asked() -> None:
    rows = rows_from_listing({"rooms": [room("a-fine"), room("z-stalled", live_edge_age_s=9.0)]})
    plain = render_table(rows, header="H", colour=False)
    lines = plain.splitlines()
    assert lines[0] == "H" and lines[1] == "2 rooms, 2 live, 1 in trouble, 0 to watch"
    assert lines[3].split() == ["ROOM", "STATE", "SESSION", "REND", "EDGE", "AGE", "P99", "BACKLOG", "SEATS",
                                "HLS/min", "NOTES"]  # fmt: skip
    assert lines[4].startswith("z-stalled") and "9.0s" in lines[4] and "STALLED 9s" in lines[4]
    assert lines[5].split() == ["a-fine", "live", "00z-aaaa1111", "a48,a64", "0.4s", "50ms", "0", "1/2", "12"]
    assert "\x1b[" not in plain
    coloured = render_table(rows, header="H", colour=True)
    assert "\x1b[1;31mz-stalled" in coloured and "\x1b[32mlive\x1b[0m" in coloured
    assert "(no rooms)" in render_table([], header="H", colour=False)


def test_watch_shows_an_unreachable_origin_and_recovers() -> None:
    answers: list[object] = [StatusError("origin unreachable: refused"), rows_from_listing({"rooms": [room("r")]})]

    def fetch() -> list:  # type: ignore[type-arg]
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    out = io.StringIO()
    assert watch(fetch, origin="http://o", interval_s=0.01, out=out, colour=False, screen=False, rounds=2) == 0
    first, second = out.getvalue().split("spillway status  http://o")[1:]
    assert "origin unreachable: refused" in first
    assert "1 rooms, 1 live" in second


def test_a_refused_token_is_fatal_in_watch() -> None:
    def fetch() -> list:  # type: ignore[type-arg]
        raise StatusError("admin token refused (403)", fatal=True)

    with pytest.raises(StatusError):
        watch(fetch, origin="http://o", interval_s=0.01, out=io.StringIO(), colour=False, screen=False, rounds=3)


def test_token_from_env_or_file_never_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPILLWAY_ADMIN_TOKEN", " from-env \n")
    assert admin_token(None) == "from-env"
    secret = tmp_path / "token"
    secret.write_text("from-file\n")
    assert admin_token(secret) == "from-file"
    monkeypatch.delenv("SPILLWAY_ADMIN_TOKEN")
    with pytest.raises(StatusError, match="SPILLWAY_ADMIN_TOKEN"):
        admin_token(None)
    with pytest.raises(StatusError, match="token file"):
        admin_token(tmp_path / "missing")
