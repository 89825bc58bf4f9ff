"""OpenAI speech API → Gemini TTS (translate/speech.py).

Requests follow OpenAI's CreateSpeechRequest (shared/schemas/openai-openapi.v2.3.0.yaml); the
Gemini side follows Google's speech-generation guide (responseModalities AUDIO, speechConfig,
multiSpeakerVoiceConfig; 24 kHz 16-bit PCM in ``audio/L16;codec=pcm;rate=24000``).
"""

from __future__ import annotations

import base64
import io
import struct
import wave
from typing import Any

import pytest

from gemini_gateway.errors import InvalidRequest
from gemini_gateway.translate.audio import wav_stream_header
from gemini_gateway.translate.speech import (
    PcmChunk,
    event_pcm,
    speech_job_to_gemini,
    speech_prompt,
    speech_request,
    speech_usage,
    voice_name,
)

OPENAI_EXAMPLE = {
    "model": "gemini-2.5-flash-preview-tts",
    "input": "The quick brown fox jumped over the lazy dog.",
    "voice": "alloy",
}
PCM_MIME = "audio/L16;codec=pcm;rate=24000"


def test_openai_example_request() -> None:
    job = speech_request(OPENAI_EXAMPLE)
    assert job.model == "gemini-2.5-flash-preview-tts"
    assert job.response_format is None and job.stream_format == "audio"
    assert speech_job_to_gemini(job) == {
        "contents": [{"role": "user", "parts": [
            {"text": "The quick brown fox jumped over the lazy dog."}]}],
        "generationConfig": {
            "responseModalities": ["AUDIO"],
            "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Zephyr"}}},
        },
    }


@pytest.mark.parametrize(
    ("voice", "gemini"),
    [
        pytest.param("Kore", "Kore", id="gemini-name"),
        pytest.param("puck", "Puck", id="gemini-name-any-case"),
        pytest.param("alloy", "Zephyr", id="openai-alloy"),
        pytest.param("onyx", "Algenib", id="openai-onyx"),
        pytest.param({"id": "Charon"}, "Charon", id="custom-voice-object"),
        pytest.param("SomeNewVoice", "SomeNewVoice", id="unknown-passes-through"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_voice_names(voice: Any, gemini: str | None) -> None:
    assert voice_name(voice) == gemini


def test_no_voice_leaves_gemini_default() -> None:
    job = speech_request({"model": "gemini-2.5-pro-preview-tts", "input": "Hi"})
    assert "speechConfig" not in speech_job_to_gemini(job)["generationConfig"]


def test_two_speaker_speech_config_passes_through_in_camel_case() -> None:
    speakers = [
        {"speaker": "Joe", "voice_config": {"prebuilt_voice_config": {"voice_name": "Kore"}}},
        {"speaker": "Jane", "voice_config": {"prebuilt_voice_config": {"voice_name": "Puck"}}},
    ]
    job = speech_request({
        **OPENAI_EXAMPLE, "input": "Joe: How's it going today Jane?\nJane: Not too bad!",
        "extra_body": {"google": {"speech_config": {
            "multi_speaker_voice_config": {"speaker_voice_configs": speakers}}}},
    })
    config = speech_job_to_gemini(job)["generationConfig"]["speechConfig"]
    assert config == {"multiSpeakerVoiceConfig": {"speakerVoiceConfigs": [
        {"speaker": "Joe", "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}},
        {"speaker": "Jane", "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Puck"}}},
    ]}}


@pytest.mark.parametrize(
    ("instructions", "speed", "prompt"),
    [
        pytest.param(None, 1.0, "Have a wonderful day!", id="plain"),
        pytest.param("Say cheerfully:", 1.0, "Say cheerfully: Have a wonderful day!",
                     id="instructions"),
        pytest.param("Speak in a whisper", 1.0, "Speak in a whisper: Have a wonderful day!",
                     id="instructions-no-colon"),
        pytest.param(None, 1.5, "Speak fast (about 1.5× normal speed): Have a wonderful day!",
                     id="fast"),
        pytest.param("Sound tired", 0.5,
                     "Sound tired. Speak slowly (about 0.5× normal speed): Have a wonderful day!",
                     id="both"),
    ],
)
def test_style_prompt(instructions: str | None, speed: float, prompt: str) -> None:
    assert speech_prompt("Have a wonderful day!", instructions, speed) == prompt


@pytest.mark.parametrize(
    ("change", "param"),
    [
        pytest.param({"model": "gemini-2.5-flash"}, "model", id="not-tts"),
        pytest.param({"model": ""}, "model", id="empty-model"),
        pytest.param({"input": ""}, "input", id="empty-input"),
        pytest.param({"input": "x" * 4097}, "input", id="input-too-long"),
        pytest.param({"voice": 7}, "voice", id="voice-number"),
        pytest.param({"response_format": "ogg"}, "response_format", id="unknown-format"),
        pytest.param({"speed": 0.1}, "speed", id="speed-too-slow"),
        pytest.param({"speed": 5}, "speed", id="speed-too-fast"),
        pytest.param({"speed": "fast"}, "speed", id="speed-text"),
        pytest.param({"instructions": 3}, "instructions", id="instructions-number"),
        pytest.param({"stream_format": "json"}, "stream_format", id="stream-format"),
        pytest.param({"google": {"speech_config": []}}, "google.speech_config", id="config"),
    ],
)
def test_invalid_requests_name_the_parameter(change: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        speech_request({**OPENAI_EXAMPLE, **change})
    assert info.value.param == param


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_every_openai_format_is_accepted_here(fmt: str) -> None:
    # Whether an encoder exists is the route's decision, not the translator's.
    assert speech_request({**OPENAI_EXAMPLE, "response_format": fmt}).response_format == fmt


def test_event_pcm_decodes_inline_audio() -> None:
    pcm = struct.pack("<4h", 0, 1000, -1000, 32767)
    event = {"candidates": [{"content": {"role": "model", "parts": [
        {"inlineData": {"mimeType": PCM_MIME, "data": base64.b64encode(pcm).decode()}}]},
        "index": 0}]}
    assert event_pcm(event) == [PcmChunk(pcm, 24000, 1)]
    assert event_pcm({"usageMetadata": {"promptTokenCount": 3}}) == []


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({"promptFeedback": {"blockReason": "SAFETY"}}, id="prompt-blocked"),
        pytest.param({"candidates": [{"finishReason": "SAFETY", "index": 0}]}, id="stopped"),
    ],
)
def test_blocked_speech_is_content_policy_400(event: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as info:
        event_pcm(event)
    assert info.value.code == "content_policy_violation"


def test_streamed_wav_header_reads_with_wave_to_the_end() -> None:
    pcm = struct.pack("<2400h", *range(2400))
    with wave.open(io.BytesIO(wav_stream_header(24000) + pcm)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (24000, 1, 2)
        assert wav.readframes(10**9) == pcm


def test_wav_header_layout() -> None:
    header = wav_stream_header(24000, 1)
    assert len(header) == 44
    assert header[:4] == b"RIFF" and header[8:16] == b"WAVEfmt "
    assert struct.unpack("<IHHIIHH", header[16:36]) == (16, 1, 1, 24000, 48000, 2, 16)
    assert header[36:40] == b"data" and header[40:] == b"\xff\xff\xff\xff"


def test_speech_usage() -> None:
    usage = {"promptTokenCount": 9, "candidatesTokenCount": 120, "totalTokenCount": 129}
    assert speech_usage(usage) == {"input_tokens": 9, "output_tokens": 120, "total_tokens": 129}
    assert speech_usage(None) == {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
