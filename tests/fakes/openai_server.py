"""The loopback OpenAI server lives in the package (``intagent eval`` replays recorded answers with it)."""

from integration_agent.replay import CHAT_PATH, SCHEMA_REJECTION, FakeOpenAI, RecordedRequest

__all__ = ["CHAT_PATH", "SCHEMA_REJECTION", "FakeOpenAI", "RecordedRequest"]
