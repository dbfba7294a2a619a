"""The OpenAI-compatible API server (`create_app`) and the client for any OpenAI-compatible provider."""

from llm_playground.serve.app import create_app
from llm_playground.serve.client import ChatReply, ProviderClient, RemoteChatModel
from llm_playground.serve.requestlog import LogRecord, RequestLog
from llm_playground.serve.server import BackgroundServer

__all__ = ["BackgroundServer", "ChatReply", "LogRecord", "ProviderClient", "RemoteChatModel", "RequestLog",
           "create_app"]
