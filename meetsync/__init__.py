"""meetsync: finished meetings become tasks, CRM updates and recaps."""

__version__ = "0.1.0"
