"""The agent: a tool-use loop over `functions` (one grammar-decoded call a step, or the answer), built-in
and user tools, and every run and step recorded in SQLite."""

from llm_playground.agent.loop import Agent, AgentRun
from llm_playground.agent.records import RunRecord, RunStore, StepRecord
from llm_playground.agent.tools import Tool, ToolResult, builtin_tools, module_tools, run_tool, select_tools

__all__ = ["Agent", "AgentRun", "RunRecord", "RunStore", "StepRecord", "Tool", "ToolResult", "builtin_tools",
           "module_tools", "run_tool", "select_tools"]
