"""Destinations meetsync writes to: one module per provider on the contract in `base`."""
