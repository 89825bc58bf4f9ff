"""Google's own google-genai SDK, pointed at the simulator, must be happy with every answer."""

from __future__ import annotations

import io
import time

import pytest
from google import genai
from google.genai import errors, types

from tests.fixtures.simulator import SimulatorHandle


def _client(sim: SimulatorHandle, key: str = "sdk-key") -> genai.Client:
    return genai.Client(api_key=key, http_options={"base_url": sim.url})


def test_generate_content(sim: SimulatorHandle) -> None:
    client = _client(sim)
    response = client.models.generate_content(
        model="gemini-2.5-flash",
        contents="What model are you?",
        config=types.GenerateContentConfig(
            thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=512),
            max_output_tokens=200,
            temperature=0.2,
        ),
    )
    assert "What model are you?" in response.text
    parts = response.candidates[0].content.parts
    assert parts[0].thought is True
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.usage_metadata.thoughts_token_count > 0
    [request] = sim.requests()
    assert request["key"] == "sdk-key"
    # The SDK passes thinking_config through in snake_case; Google takes both spellings.
    assert sorted(request["body"]["generationConfig"]["thinkingConfig"].values()) == [True, 512]


def test_generate_content_stream(sim: SimulatorHandle) -> None:
    sim.configure(stream_chunks=4)
    client = _client(sim)
    chunks = list(
        client.models.generate_content_stream(model="gemini-2.0-flash", contents="Tell me a story")
    )
    assert len(chunks) == 4
    assert "Tell me a story" in "".join(c.text for c in chunks)
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert all(c.usage_metadata.prompt_token_count for c in chunks)
    assert sim.requests()[0]["query"] == {"alt": "sse"}


def test_function_calling_round_trip_on_gemini_3(sim: SimulatorHandle) -> None:
    client = _client(sim)
    weather = types.FunctionDeclaration(
        name="get_current_weather",
        description="Get the current weather in a given location",
        parameters_json_schema={
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    )
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[weather])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    question = types.Content(role="user", parts=[types.Part(text="Weather in Boston?")])
    first = client.models.generate_content(
        model="gemini-3-pro-preview", contents=[question], config=config
    )
    call_part = first.candidates[0].content.parts[0]
    assert first.function_calls[0].name == "get_current_weather"
    assert first.function_calls[0].args == {"location": "sample location"}
    assert call_part.thought_signature
    reply = types.Part.from_function_response(
        name="get_current_weather", response={"temperature": 21}
    )
    second = client.models.generate_content(
        model="gemini-3-pro-preview",
        contents=[question, first.candidates[0].content, types.Content(role="user", parts=[reply])],
        config=config,
    )
    assert '"temperature":21' in second.text
    unsigned = types.Content(
        role="model", parts=[types.Part(function_call=call_part.function_call)]
    )
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(
            model="gemini-3-pro-preview",
            contents=[question, unsigned, types.Content(role="user", parts=[reply])],
            config=config,
        )
    assert info.value.code == 400
    assert "thought_signature" in info.value.message


def test_file_upload_and_use(sim: SimulatorHandle) -> None:
    sim.configure(file_active_delay=0.1)
    client = _client(sim)
    data = b"%PDF-1.4\n" + bytes(range(256)) * 10
    uploaded = client.files.upload(
        file=io.BytesIO(data), config={"mime_type": "application/pdf", "display_name": "doc"}
    )
    assert uploaded.state == types.FileState.PROCESSING
    assert uploaded.size_bytes == len(data)
    assert sim.file_bytes(uploaded.name) == data
    time.sleep(0.15)
    fetched = client.files.get(name=uploaded.name)
    assert fetched.state == types.FileState.ACTIVE
    response = client.models.generate_content(
        model="gemini-2.5-flash", contents=[fetched, "Summarise this file"]
    )
    assert "Summarise this file" in response.text
    other = _client(sim, "another-key")
    with pytest.raises(errors.ClientError) as info:
        other.files.get(name=uploaded.name)
    assert info.value.code == 403


def test_sdk_sees_google_errors(sim: SimulatorHandle) -> None:
    bad = _client(sim, "invalid-key")
    with pytest.raises(errors.ClientError) as info:
        bad.models.generate_content(model="gemini-2.0-flash", contents="hi")
    assert info.value.code == 400 and info.value.status == "INVALID_ARGUMENT"
    sim.add_fault(status=503, times=1)
    client = _client(sim)
    with pytest.raises(errors.ServerError) as server:
        client.models.generate_content(
            model="gemini-2.0-flash",
            contents="hi",
            config={"http_options": {"retry_options": {"attempts": 1}}},
        )
    assert server.value.code == 503


def test_image_generation_and_tts(sim: SimulatorHandle) -> None:
    client = _client(sim)
    image = client.models.generate_content(
        model="gemini-2.5-flash-image",
        contents="Draw a kitten",
        config=types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"]),
    )
    blob = image.candidates[0].content.parts[1].inline_data
    assert blob.mime_type == "image/png" and blob.data.startswith(b"\x89PNG")
    speech = client.models.generate_content(
        model="gemini-2.5-flash-preview-tts",
        contents="Say hello",
        config=types.GenerateContentConfig(
            response_modalities=["AUDIO"],
            speech_config=types.SpeechConfig(
                voice_config=types.VoiceConfig(
                    prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name="Kore")
                )
            ),
        ),
    )
    audio = speech.candidates[0].content.parts[0].inline_data
    assert audio.mime_type == "audio/L16;codec=pcm;rate=24000"
    assert len(audio.data) == 2 * 2400 * 2


def test_models_list_and_count_tokens(sim: SimulatorHandle) -> None:
    client = _client(sim)
    names = [m.name for m in client.models.list(config={"page_size": 5})]
    assert "models/gemini-2.5-pro" in names and len(names) == len(set(names)) > 5
    assert (
        client.models.count_tokens(model="gemini-2.0-flash", contents="one two three").total_tokens
        == 3
    )
