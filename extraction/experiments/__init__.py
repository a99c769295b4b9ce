"""Experiments on extraction: arms, deterministic assignment, and the settings an arm runs.

`spec` validates an experiment (shares, models, prompt versions, task) with located errors;
`assign` maps (experiment, meeting) to an arm by a hash, with no state; `routing` reads the
running experiments and the task defaults and gives the extract stage its effective
settings. The statistics that judge arms live in `admin/experiments.py`.
"""

from extraction.experiments.assign import assign, unit_of
from extraction.experiments.spec import Arm, ExperimentSpec, InvalidExperiment, parse_spec

__all__ = ["Arm", "ExperimentSpec", "InvalidExperiment", "assign", "parse_spec", "unit_of"]
