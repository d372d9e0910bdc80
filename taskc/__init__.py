"""taskc: a declarative task-spec compiler for LLM tasks."""

__version__ = "0.1.0"
