"""Time types and the SATS codecs, with no server at all.

SpacetimeDB counts time in integer microseconds. ``Timestamp``, ``TimeDuration`` and
``ScheduleAt`` hold exactly that, and the ``sats`` module turns them (and any other SATS value)
into the bytes of BSATN, the binary wire format, or into SATS-JSON, the HTTP API's format.

Run it: ``python examples/time_and_codec.py``
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from spacetime_sched import ScheduleAt, TimeDuration, Timestamp, sats


def time_types() -> None:
    print("== time types ==")
    # An instant: microseconds since the Unix epoch, always an exact int.
    launch = Timestamp.parse("2025-03-09T06:30:00Z")
    print("launch       ", launch.to_iso(), "=", launch.micros_since_epoch, "µs")

    # Arithmetic stays exact; floats are only accepted by the from_* constructors.
    later = launch + TimeDuration.from_minutes(90)
    print(
        "90 min later ", later.to_iso(), "| difference:", (later - launch).format_human_readable()
    )

    # Time zones are for display: the instant never changes. 2025-03-09 is the day New York
    # springs forward (-05:00 becomes -04:00 at 02:00), so these two instants 1.5 h apart
    # read 2.5 h apart on a New York wall clock.
    print("in New York  ", launch.to_timezone("America/New_York").isoformat())
    print("             ", later.to_timezone("America/New_York").isoformat())

    # A naive datetime is local time, read exactly as datetime.timestamp() reads it; a zone
    # given with it is kept for display (timezone_info) but never changes the instant.
    naive = dt.datetime(2025, 3, 9, 6, 30)
    assert Timestamp.from_datetime(naive).to_unix_seconds() == naive.timestamp()
    zoned = Timestamp.from_datetime(naive.replace(tzinfo=ZoneInfo("America/New_York")))
    print("zoned        ", zoned.to_local_iso(), "| same instant as", zoned.to_iso())

    # ScheduleAt is what SpacetimeDB schedule tables hold: a repeat interval or one instant.
    for schedule in (ScheduleAt.at_interval(dt.timedelta(seconds=5)), ScheduleAt.at_time(later)):
        match schedule:
            case ScheduleAt.Interval(every):
                print("ScheduleAt   repeats every", every.format_human_readable())
            case ScheduleAt.Time(at):
                print("ScheduleAt   runs once at", at.to_iso())


def codecs() -> None:
    print("== BSATN and SATS-JSON ==")
    # Build a SATS type the way a module's schema describes a table row.
    event_row = sats.product(
        ("id", sats.U64),
        ("name", sats.STRING),
        ("at", sats.TIMESTAMP),
        ("schedule", sats.SCHEDULE_AT),
        ("note", sats.option(sats.STRING)),
    )
    row = {
        "id": 7,
        "name": "backup",
        "at": Timestamp.parse("2025-03-09T06:30:00Z"),
        "schedule": ScheduleAt.at_interval(3600),  # every hour
        "note": None,
    }
    # Compile once, reuse: the codec is cached per (type, typespace).
    codec = sats.compile(event_row)
    data = codec.encode(row)
    print("BSATN        ", len(data), "bytes:", data.hex())
    decoded = codec.decode(data)
    assert decoded == row, (decoded, row)
    print("decoded      ", decoded)

    # SATS-JSON is what the HTTP API and `spacetime sql` speak.
    as_json = codec.to_json(row)
    print("SATS-JSON    ", as_json)
    assert codec.from_json(as_json) == row

    # Errors name the path to the bad part of the value.
    try:
        codec.encode({**row, "id": -1})
    except sats.EncodeError as exc:
        print("bad value    ", exc)

    print("time types and codecs: round trips OK")


if __name__ == "__main__":
    time_types()
    codecs()
