"""Admin errors, named for what the caller did wrong.

AdminError
├── NotFound        no such org, connection, version or meeting
├── AlreadyExists   creating what is already there
└── Invalid         input that cannot be used as given (a profile, a credential)
"""

from __future__ import annotations


class AdminError(Exception):
    """Something an admin asked for cannot be done; the message says why."""


class NotFound(AdminError):
    """No such org, connection, version or meeting."""


class AlreadyExists(AdminError):
    """Creating something that is already there."""


class Invalid(AdminError):
    """Input that cannot be used as given."""
