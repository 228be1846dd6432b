"""``spacetime-sched next``: when a cron expression or a daily time fires next.

The times come from the scheduler's own triggers (:class:`~spacetime_sched.scheduler.CronTrigger`,
:class:`~spacetime_sched.scheduler.DailyTrigger`): the first is ``initial_fire(after)`` and
each next one ``next_fire(previous)``, exactly the calls the scheduler makes, so daylight
saving changes show here as the scheduler will fire them. Each line shows the wall time in
the zone (with its abbreviation and UTC offset) and the instant in UTC.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, Final

from .._errors import SpacetimeSchedError
from .._time import Timestamp
from ..scheduler import CronTrigger, DailyTrigger, Trigger
from ._schedfile import parse_daily

__all__ = ["add_next", "next_fires"]

MAX_COUNT: Final = 1000
EXIT_USAGE: Final = 2


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    if not 1 <= value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_COUNT}, got {value}")
    return value


def add_next(commands: Any) -> None:
    parser = commands.add_parser(
        "next",
        help="show the next fire times of a cron expression or a daily time",
        description=(
            "Show when a cron expression (5 fields, or 6 with seconds first; @hourly, @daily, "
            "...) or a daily wall time fires next, in the zone and in UTC, computed by the "
            "scheduler's own triggers (daylight saving included)."
        ),
        epilog=(
            "examples:  spacetime-sched next '30 2 * * *' --tz America/New_York -n 3\n"
            "           spacetime-sched next --daily 09:00 --tz Europe/Paris"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("expression", nargs="?", metavar="EXPRESSION", help="a cron expression")
    parser.add_argument("--daily", metavar="HH:MM", help="a daily wall time instead of cron")
    parser.add_argument(
        "--tz", default="UTC", metavar="ZONE", help="an IANA time zone (default UTC)"
    )
    parser.add_argument(
        "-n", type=_count, default=5, metavar="COUNT", help="how many fire times (default 5)"
    )
    parser.add_argument(
        "--after",
        metavar="TIMESTAMP",
        help="start after this instant, e.g. 2025-03-08T12:00:00Z (default now)",
    )
    parser.set_defaults(run=_run)


def next_fires(trigger: Trigger, after: Timestamp, count: int) -> list[Timestamp]:
    """The first ``count`` fire times of ``trigger`` scheduled at ``after`` (fewer if it ends)."""
    fires: list[Timestamp] = []
    fire = trigger.initial_fire(after)
    while fire is not None and len(fires) < count:
        fires.append(fire)
        fire = trigger.next_fire(fire)
    return fires


def _run(args: argparse.Namespace, out: Callable[[str], None]) -> int:
    try:
        if (args.expression is None) == (args.daily is None):
            raise ValueError("give either a cron EXPRESSION or --daily HH:MM (one of them)")
        trigger: CronTrigger | DailyTrigger
        if args.daily is not None:
            hour, minute, second = parse_daily(args.daily)
            trigger = DailyTrigger(hour, minute, second, timezone=args.tz)
        else:
            trigger = CronTrigger(args.expression, timezone=args.tz)
        after = Timestamp.now() if args.after is None else Timestamp.parse(args.after)
    except (ValueError, SpacetimeSchedError) as exc:
        print(f"spacetime-sched next: {exc}", file=sys.stderr)
        return EXIT_USAGE
    fires = next_fires(trigger, after, args.n)
    out(f"{trigger.describe()}: the next {len(fires)} fire times after {after.to_iso()}")
    zone = trigger.timezone
    for fire in fires:
        local = fire.to_timezone(zone)
        offset = local.strftime("%z")
        out(
            f"  {local.strftime('%a %Y-%m-%d %H:%M:%S')} {local.tzname()} "
            f"({offset[:3]}:{offset[3:]})  =  {fire.to_iso()}"
        )
    if len(fires) < args.n:
        out("  (no further fire times)")
    return 0
