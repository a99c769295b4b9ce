"""Per-org field mappings: the spec, the YAML loader, and the engine that plans Ops."""

from .engine import plan_ops
from .errors import MappingError, PlanError
from .loader import load_mapping
from .spec import Mapping

__all__ = ["Mapping", "MappingError", "PlanError", "load_mapping", "plan_ops"]
