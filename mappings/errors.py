"""What goes wrong with a mapping, said so an admin can fix it.

    InvalidMapping (connectors.errors)   a mapping asks for something that does not fit
    └── MappingError                     one problem: file, YAML path, line, message, fix
                                         raised with `problems` listing every problem found
    PlanError                            the engine met data it cannot turn into ops

The loader and the validators collect every problem before raising, so one run of
`meetsync mappings validate` shows the whole list instead of the first typo.
"""

from __future__ import annotations

from collections.abc import Sequence

from connectors.errors import InvalidMapping


class MappingError(InvalidMapping):
    """One problem in a mapping, located by file, YAML path and line."""

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        line: int | None = None,
        file: str | None = None,
        fix: str | None = None,
        problems: Sequence[MappingError] | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.file = file
        self.fix = fix
        self.problems: list[MappingError] = list(problems) if problems else [self]

    @classmethod
    def collect(cls, problems: Sequence[MappingError]) -> MappingError:
        """One error to raise that carries every problem found."""
        if len(problems) == 1:
            return problems[0]
        first = problems[0]
        summary = f"{len(problems)} problems in the mapping"
        return cls(summary, file=first.file, problems=problems)

    @property
    def where(self) -> str:
        """`file:line path`, as much of it as is known."""
        place = self.file or "<mapping>"
        if self.line is not None:
            place += f":{self.line}"
        return f"{place} {self.path}".rstrip()

    def describe(self) -> str:
        """The problem on one line, with the fix when there is one."""
        text = f"{self.where}: {self.message}"
        return f"{text} (fix: {self.fix})" if self.fix else text

    def __str__(self) -> str:
        if len(self.problems) > 1 or self.problems[0] is not self:
            return "\n".join([self.message, *(p.describe() for p in self.problems)])
        return self.describe()


class PlanError(Exception):
    """The engine cannot plan ops for this meeting with this mapping."""
