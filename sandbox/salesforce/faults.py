"""Salesforce's error shape: a JSON array of {message, errorCode, fields}."""

from __future__ import annotations

from typing import Any


class SalesforceFault(Exception):
    """An error the emulated org answers with; rendered as Salesforce renders it."""

    def __init__(
        self, status: int, code: str, message: str, fields: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []

    def body(self) -> list[dict[str, Any]]:
        """The REST error body: always a list, even for one error."""
        return [{"message": self.message, "errorCode": self.code, "fields": self.fields}]

    def collection_error(self) -> dict[str, Any]:
        """The per-record error inside an sObject Collections result (statusCode, not errorCode)."""
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


def not_found() -> SalesforceFault:
    return SalesforceFault(404, "NOT_FOUND", "The requested resource does not exist")


def invalid_session() -> SalesforceFault:
    return SalesforceFault(401, "INVALID_SESSION_ID", "Session expired or invalid")


# What an injected status looks like when Salesforce itself would have sent it.
INJECTED = {
    400: ("INVALID_INPUT", "Invalid input"),
    401: ("INVALID_SESSION_ID", "Session expired or invalid"),
    403: ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
    404: ("NOT_FOUND", "The requested resource does not exist"),
    429: ("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."),
    500: (
        "UNKNOWN_EXCEPTION",
        "An unexpected error occurred. Please include this ErrorId "
        "if you contact support: 1234567890-12345 (-1234567890)",
    ),
    502: ("SERVER_UNAVAILABLE", "Bad gateway"),
    503: ("SERVER_UNAVAILABLE", "Server unavailable: the org is being maintained"),
}

# Default messages for codes a fault rule may name (`{"kind": "error", "code": ...}`).
CODE_MESSAGES = {
    "UNABLE_TO_LOCK_ROW": "unable to obtain exclusive access to this record or 1 records: "
    "001SBX000000001AAA",
    "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY": "Meeting_Task_Sync: We can't save this record "
    "because the \u201cMeeting Task Sync\u201d process failed. Give your Salesforce admin "
    "these details. This error occurred when the flow tried to update records: "
    "FIELD_CUSTOM_VALIDATION_EXCEPTION: Tasks from meetings need a Type.",
}
