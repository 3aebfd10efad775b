"""Test helpers: a local OpenAI-compatible server (loopback only) used by the HTTP-path tests."""
