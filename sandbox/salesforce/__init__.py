"""Local emulator of the Salesforce REST API (OAuth, sObjects, SOQL, collections, limits)."""

from sandbox.salesforce.app import SalesforceSandbox

__all__ = ["SalesforceSandbox"]
