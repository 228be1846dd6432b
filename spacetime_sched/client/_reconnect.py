"""``ReconnectPolicy``: how a connection comes back after the server or the network drops it.

Off by default: without ``with_reconnect`` a dropped connection stays closed, so a program that
wants to fail fast still does. With a policy, the connection retries after
``initial_delay``, ``initial_delay * multiplier``, ``initial_delay * multiplier**2``, ...
seconds, never more than ``max_delay``, each delay shortened by a random fraction of up to
``jitter`` (``jitter=1.0`` is the "full jitter" of the AWS architecture blog: a uniform draw
between 0 and the delay), so that many clients dropped by one server restart do not all come
back in the same instant. The scheduler's retry backoff follows the same rule
(``SchedulePolicy.backoff_delay``).

Delays are seconds at this edge (the user's unit) and whole microseconds inside: a delay is
rounded to the nearest microsecond, ties to even (Python's ``round``).
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from .._errors import ConfigurationError

__all__ = ["ReconnectPolicy", "reconnect_policy"]


def _seconds(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(
            f"ReconnectPolicy.{attribute.name}: expected seconds as a number, got {value!r}"
        )
    if not (math.isfinite(value) and value > 0):
        raise ConfigurationError(
            f"ReconnectPolicy.{attribute.name}: expected finite seconds > 0, got {value!r}"
        )


def _max_delay(instance: ReconnectPolicy, attribute: attrs.Attribute[float], value: object) -> None:
    _seconds(instance, attribute, value)
    assert isinstance(value, (int, float))
    if value < instance.initial_delay:
        raise ConfigurationError(
            f"ReconnectPolicy.max_delay: expected at least initial_delay "
            f"({instance.initial_delay}), got {value!r}"
        )


def _multiplier(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and value >= 1)
    ):
        raise ConfigurationError(
            f"ReconnectPolicy.multiplier: expected a number >= 1, got {value!r}"
        )


def _jitter(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigurationError(
            f"ReconnectPolicy.jitter: expected a number in 0..1, got {value!r}"
        )


def _attempts(_: object, attribute: attrs.Attribute[int | None], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"ReconnectPolicy.max_attempts: expected an int >= 1 or None (no limit), got {value!r}"
        )


@attrs.frozen(kw_only=True)
class ReconnectPolicy:
    """When to try again after a connection drops (see the module docs).

    * ``initial_delay`` (default 0.5 s): the wait before the first attempt;
    * ``multiplier`` (default 2.0, >= 1): each further wait is this many times the previous;
    * ``max_delay`` (default 30 s, >= ``initial_delay``): no wait is longer;
    * ``jitter`` (default 0.2, 0..1): each wait is shortened by a random fraction up to this;
    * ``max_attempts`` (default ``None``: for ever): after this many failed attempts in a row
      the connection gives up and its ``async with`` block ends with
      :class:`~spacetime_sched.ConnectError` naming the attempts and the last reason.

    A bad value raises :class:`~spacetime_sched.ConfigurationError` naming the field.
    """

    initial_delay: float = attrs.field(default=0.5, validator=_seconds)
    max_delay: float = attrs.field(default=30.0, validator=_max_delay)
    multiplier: float = attrs.field(default=2.0, validator=_multiplier)
    jitter: float = attrs.field(default=0.2, validator=_jitter)
    max_attempts: int | None = attrs.field(default=None, validator=_attempts)

    def delay_micros(self, attempt: int, random_fraction: float) -> int:
        """Microseconds to wait before attempt number ``attempt`` (1-based);
        ``random_fraction`` is a uniform draw in [0, 1)."""
        # The exponent is capped so that a service retrying for weeks never overflows a float.
        exponent = min(attempt - 1, 1024)
        try:
            base = self.initial_delay * self.multiplier**exponent
        except OverflowError:
            base = math.inf
        delay = min(base, self.max_delay)
        return round(delay * (1.0 - self.jitter * random_fraction) * 1_000_000)


def reconnect_policy(policy: Any) -> ReconnectPolicy | None:
    """``with_reconnect``'s argument as a policy: ``True`` is the defaults, ``False`` or
    ``None`` is off; anything else is :class:`ConfigurationError`."""
    if policy is True:
        return ReconnectPolicy()
    if policy is False or policy is None:
        return None
    if isinstance(policy, ReconnectPolicy):
        return policy
    raise ConfigurationError(
        f"reconnect: expected True, False or a ReconnectPolicy, got {type(policy).__name__}"
    )
