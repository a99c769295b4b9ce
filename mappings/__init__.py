"""Per-org field mappings: the spec, the YAML loader, and the engine that plans Ops."""

from .engine import plan_ops
from .errors import MappingError, PlanError
from .loader import load_mapping
from .schema import mapping_json_schema
from .spec import Mapping
from .validate import validate_against

__all__ = [
    "Mapping",
    "MappingError",
    "PlanError",
    "load_mapping",
    "mapping_json_schema",
    "plan_ops",
    "validate_against",
]
