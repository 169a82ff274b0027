"""The mock LLM server as the official `anthropic` SDK sees it (an API key sent as
`Authorization: Bearer`, `anthropic-version: 2026-10-21`), with `--require-auth` on: the mock must
take what the real service takes, or tests that drive it through the SDK prove nothing."""

from __future__ import annotations

import anthropic
import pytest

from servers.mock_llm import create_app, running_mock_llm

pytestmark = pytest.mark.anyio


async def test_the_official_anthropic_sdk_is_accepted_with_auth_required() -> None:
    app = create_app(require_auth=True)
    async with running_mock_llm(app) as url:
        client = anthropic.AsyncAnthropic(api_key="sk-ant-test-key", base_url=url, max_retries=0)
        try:
            message = await client.messages.create(
                model="mock-claude", max_tokens=64, messages=[{"role": "user", "content": "hello there"}])
            assert message.content[0].text.startswith("Mock answer (model mock-claude)")
            assert message.usage.input_tokens > 0 and message.stop_reason == "end_turn"
            async with client.messages.stream(
                    model="mock-claude", max_tokens=64, messages=[{"role": "user", "content": "stream it"}]) as stream:
                text = "".join([piece async for piece in stream.text_stream])
            assert text.startswith("Mock answer (model mock-claude)")
            with pytest.raises(anthropic.AuthenticationError):  # no credential at all: 401, as the service says
                await client.messages.create(
                    model="mock-claude", max_tokens=64, messages=[{"role": "user", "content": "no key"}],
                    extra_headers={"Authorization": anthropic.omit})
        finally:
            await client.close()
    seen = app.state.mock_llm.history()
    assert seen[0]["headers"]["authorization"] == "***"  # the SDK's Bearer credential, redacted
    assert seen[0]["headers"]["anthropic-version"] == anthropic._constants.ANTHROPIC_API_VERSION
