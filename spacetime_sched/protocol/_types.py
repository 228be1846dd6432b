"""The v2 messages as SATS types: :data:`CLIENT_MESSAGE_TYPE` and :data:`SERVER_MESSAGE_TYPE`.

The hand-written codec in ``_codec`` is what encodes and decodes messages; these types describe
the same wire format to the generic SATS machinery (documentation, cross-checks in the tests,
tools that want to print or compare the protocol). They equal, field for field, the ``type`` of
the ``v2.*`` golden vectors.
"""

from __future__ import annotations

from typing import Final

from .. import sats

__all__ = [
    "BSATN_ROW_LIST_TYPE",
    "CLIENT_MESSAGE_TYPE",
    "QUERY_ROWS_TYPE",
    "QUERY_SET_ID_TYPE",
    "REDUCER_OUTCOME_TYPE",
    "SERVER_MESSAGE_TYPE",
    "TRANSACTION_UPDATE_TYPE",
]

QUERY_SET_ID_TYPE: Final = sats.product(("id", sats.U32))

ROW_SIZE_HINT_TYPE: Final = sats.sum(("FixedSize", sats.U16), ("RowOffsets", sats.array(sats.U64)))
BSATN_ROW_LIST_TYPE: Final = sats.product(
    ("size_hint", ROW_SIZE_HINT_TYPE), ("rows_data", sats.BYTES)
)
QUERY_ROWS_TYPE: Final = sats.product(
    (
        "tables",
        sats.array(sats.product(("table", sats.STRING), ("rows", BSATN_ROW_LIST_TYPE))),
    )
)
TABLE_UPDATE_ROWS_TYPE: Final = sats.sum(
    (
        "PersistentTable",
        sats.product(("inserts", BSATN_ROW_LIST_TYPE), ("deletes", BSATN_ROW_LIST_TYPE)),
    ),
    ("EventTable", sats.product(("events", BSATN_ROW_LIST_TYPE))),
)
TRANSACTION_UPDATE_TYPE: Final = sats.product(
    (
        "query_sets",
        sats.array(
            sats.product(
                ("query_set_id", QUERY_SET_ID_TYPE),
                (
                    "tables",
                    sats.array(
                        sats.product(
                            ("table_name", sats.STRING),
                            ("rows", sats.array(TABLE_UPDATE_ROWS_TYPE)),
                        )
                    ),
                ),
            )
        ),
    )
)
REDUCER_OUTCOME_TYPE: Final = sats.sum(
    (
        "Ok",
        sats.product(("ret_value", sats.BYTES), ("transaction_update", TRANSACTION_UPDATE_TYPE)),
    ),
    "OkEmpty",
    ("Err", sats.BYTES),
    ("InternalError", sats.STRING),
)
PROCEDURE_STATUS_TYPE: Final = sats.sum(("Returned", sats.BYTES), ("InternalError", sats.STRING))

CLIENT_MESSAGE_TYPE: Final = sats.sum(
    (
        "Subscribe",
        sats.product(
            ("request_id", sats.U32),
            ("query_set_id", QUERY_SET_ID_TYPE),
            ("query_strings", sats.array(sats.STRING)),
        ),
    ),
    (
        "Unsubscribe",
        sats.product(
            ("request_id", sats.U32),
            ("query_set_id", QUERY_SET_ID_TYPE),
            ("flags", sats.sum("Default", "SendDroppedRows")),
        ),
    ),
    ("OneOffQuery", sats.product(("request_id", sats.U32), ("query_string", sats.STRING))),
    (
        "CallReducer",
        sats.product(
            ("request_id", sats.U32),
            ("flags", sats.U8),
            ("reducer", sats.STRING),
            ("args", sats.BYTES),
        ),
    ),
    (
        "CallProcedure",
        sats.product(
            ("request_id", sats.U32),
            ("flags", sats.U8),
            ("procedure", sats.STRING),
            ("args", sats.BYTES),
        ),
    ),
)

SERVER_MESSAGE_TYPE: Final = sats.sum(
    (
        "InitialConnection",
        sats.product(
            ("identity", sats.IDENTITY),
            ("connection_id", sats.CONNECTION_ID),
            ("token", sats.STRING),
        ),
    ),
    (
        "SubscribeApplied",
        sats.product(
            ("request_id", sats.U32),
            ("query_set_id", QUERY_SET_ID_TYPE),
            ("rows", QUERY_ROWS_TYPE),
        ),
    ),
    (
        "UnsubscribeApplied",
        sats.product(
            ("request_id", sats.U32),
            ("query_set_id", QUERY_SET_ID_TYPE),
            ("rows", sats.option(QUERY_ROWS_TYPE)),
        ),
    ),
    (
        "SubscriptionError",
        sats.product(
            ("request_id", sats.option(sats.U32)),
            ("query_set_id", QUERY_SET_ID_TYPE),
            ("error", sats.STRING),
        ),
    ),
    ("TransactionUpdate", TRANSACTION_UPDATE_TYPE),
    (
        "OneOffQueryResult",
        sats.product(
            ("request_id", sats.U32),
            ("result", sats.result(QUERY_ROWS_TYPE, sats.STRING)),
        ),
    ),
    (
        "ReducerResult",
        sats.product(
            ("request_id", sats.U32),
            ("timestamp", sats.TIMESTAMP),
            ("result", REDUCER_OUTCOME_TYPE),
        ),
    ),
    (
        "ProcedureResult",
        sats.product(
            ("status", PROCEDURE_STATUS_TYPE),
            ("timestamp", sats.TIMESTAMP),
            ("total_host_execution_duration", sats.TIME_DURATION),
            ("request_id", sats.U32),
        ),
    ),
)
