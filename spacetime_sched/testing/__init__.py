"""Test helpers: a virtual clock for the scheduler and a local SpacetimeDB-compatible server."""

from __future__ import annotations
