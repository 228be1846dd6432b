"""The connection the commands open: one reading of ``--token`` / ``--credentials-file``."""

from __future__ import annotations

import argparse

from ..client import DbConnection


def build_connection(args: argparse.Namespace, uri: str, database: str) -> DbConnection:
    """An unconnected :class:`DbConnection` to ``database`` at ``uri``, authenticated by the
    command's ``--token`` or ``--credentials-file`` (at most one is given; neither: anonymous)."""
    builder = DbConnection.builder().with_uri(uri).with_database_name(database)
    if args.token:
        builder = builder.with_token(args.token)
    elif args.credentials_file:
        builder = builder.with_credentials_file(args.credentials_file)
    return builder.build()
