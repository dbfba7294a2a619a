"""Function calling: definitions + requests → calls decoded under a grammar, validated, measured."""

from llm_playground.functions.calling import CallOutcome, CallStats, ToolCall, call_functions, call_schema
from llm_playground.functions.grammar import GrammarConstraint, json_schema_constraint
from llm_playground.functions.schema import FunctionSpec, load_functions, specs_from_openai_tools
from llm_playground.functions.validate import FunctionCallResult, validate_call

__all__ = ["CallOutcome", "CallStats", "FunctionCallResult", "FunctionSpec", "GrammarConstraint", "ToolCall",
           "call_functions", "call_schema", "json_schema_constraint", "load_functions", "specs_from_openai_tools",
           "validate_call"]
