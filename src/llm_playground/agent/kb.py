"""`kb_search`: the workspace's knowledge base (llm_playground.knowledge) as a tool (`llmp agent --kb`).

The result is the best passages, numbered, each with its source, cut so three fit a small model's
context. The knowledge base is opened when the tool is made (an empty or missing one is an error then,
not a result the model has to make sense of); the embedding model loads on the first search.
"""

from __future__ import annotations

from llm_playground.agent.pytools import spec_from_function
from llm_playground.agent.tools import Tool
from llm_playground.errors import InputError
from llm_playground.workspace import Workspace

K = 3
PASSAGE_CHARS = 500
TIMEOUT_S = 120.0  # the first search loads the embedding model


def kb_tool(workspace: Workspace, k: int = K) -> Tool:
    from llm_playground.knowledge import open_kb

    if not workspace.kb_db.exists():
        raise InputError(f"there is no knowledge base in {workspace.root}", "add documents with `llmp kb add PATH`")
    kb = open_kb(workspace)
    if kb.status()["chunks"] == 0:
        raise InputError("the knowledge base is empty", "add documents with `llmp kb add PATH`")

    def kb_search(query: str) -> str:
        """Search the user's documents (the knowledge base) for passages about a topic or question.

        Args:
            query: the words to look for
        """
        hits = kb.search(query, k=k, mode="hybrid")
        if not hits:
            return "no passage in the documents matches"
        return "\n".join(f"[{n}] {hit.source}: {' '.join(hit.text.split())[:PASSAGE_CHARS]}"
                         for n, hit in enumerate(hits, 1))

    return Tool(spec_from_function(kb_search), kb_search, timeout_s=TIMEOUT_S)
