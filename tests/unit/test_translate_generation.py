"""OpenAI parameters → Gemini generationConfig: names, ranges, thinking and output modalities.

Ranges are those of OpenAI's CreateChatCompletionRequest schema (temperature 0-2, top_p 0-1,
penalties -2..2, top_logprobs 0-20) and Gemini's limits (5 stop sequences, 8 candidates, int32
seed). Google's extras follow ai.google.dev/gemini-api/docs/openai (extra_body.google).
"""

from __future__ import annotations

from typing import Any

import pytest

from gemini_gateway.errors import InvalidRequest
from gemini_gateway.translate.generation import (
    GEMINI_VOICES,
    OPENAI_VOICES,
    audio_format,
    output_config,
    sampling_config,
    thinking_config,
)
from gemini_gateway.translate.models import parse_model


def test_every_parameter_is_renamed() -> None:
    config = sampling_config({
        "temperature": 0.7, "top_p": 0.9, "top_k": 40, "max_tokens": 100, "stop": ["\n", "END"],
        "n": 2, "presence_penalty": 0.5, "frequency_penalty": -0.5, "seed": 42,
        "logprobs": True, "top_logprobs": 3,
    })
    assert config == {
        "temperature": 0.7, "topP": 0.9, "topK": 40, "maxOutputTokens": 100,
        "stopSequences": ["\n", "END"], "candidateCount": 2, "presencePenalty": 0.5,
        "frequencyPenalty": -0.5, "seed": 42, "responseLogprobs": True, "logprobs": 3,
    }


def test_no_defaults_are_invented() -> None:
    assert sampling_config({"model": "x", "messages": []}) == {}
    nulls = dict.fromkeys(["temperature", "top_p", "max_tokens", "stop", "n", "seed",
                           "logprobs", "top_logprobs", "presence_penalty"])
    assert sampling_config(nulls) == {}


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    config = sampling_config({"max_tokens": 10, "max_completion_tokens": 20})
    assert config == {"maxOutputTokens": 20}


def test_stop_string_and_limit() -> None:
    assert sampling_config({"stop": "END"}) == {"stopSequences": ["END"]}
    assert sampling_config({"stop": ["a", "b", "c", "d", "e"]})["stopSequences"] == list("abcde")
    with pytest.raises(InvalidRequest) as caught:
        sampling_config({"stop": ["a", "b", "c", "d", "e", "f"]})
    assert caught.value.param == "stop"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        pytest.param({"temperature": 2.5}, "temperature", id="temperature-high"),
        pytest.param({"temperature": -0.1}, "temperature", id="temperature-low"),
        pytest.param({"temperature": "0.5"}, "temperature", id="temperature-string"),
        pytest.param({"temperature": True}, "temperature", id="temperature-bool"),
        pytest.param({"top_p": 1.5}, "top_p", id="top_p"),
        pytest.param({"top_k": 0}, "top_k", id="top_k-zero"),
        pytest.param({"top_k": 1.5}, "top_k", id="top_k-fraction"),
        pytest.param({"max_tokens": 0}, "max_tokens", id="max_tokens-zero"),
        pytest.param({"max_completion_tokens": "10"}, "max_completion_tokens", id="mct-string"),
        pytest.param({"n": 0}, "n", id="n-zero"),
        pytest.param({"n": 9}, "n", id="n-over-gemini-max"),
        pytest.param({"presence_penalty": 3}, "presence_penalty", id="presence"),
        pytest.param({"frequency_penalty": -2.5}, "frequency_penalty", id="frequency"),
        pytest.param({"seed": 2**31}, "seed", id="seed-over-int32"),
        pytest.param({"seed": "1"}, "seed", id="seed-string"),
        pytest.param({"logprobs": "yes"}, "logprobs", id="logprobs-string"),
        pytest.param({"logprobs": True, "top_logprobs": 21}, "top_logprobs", id="top-21"),
        pytest.param({"top_logprobs": 2}, "top_logprobs", id="top-without-logprobs"),
        pytest.param({"stop": 5}, "stop", id="stop-number"),
        pytest.param({"stop": ["a", 1]}, "stop", id="stop-mixed"),
    ],
)
def test_wrong_values_name_the_parameter(params: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        sampling_config(params)
    assert caught.value.param == param


def think(model: str, request: dict[str, Any] | None = None,
          google: dict[str, Any] | None = None) -> dict[str, Any]:
    return dict(thinking_config(parse_model(model), request or {}, google or {}))


def test_thinking_from_the_model_suffix() -> None:
    assert think("gemini-2.5-flash") == {}
    assert think("gemini-2.5-flash-thinking") == {"includeThoughts": True}
    assert think("gemini-2.5-pro-thinking-4096") == {"includeThoughts": True,
                                                     "thinkingBudget": 4096}
    assert think("gemini-2.5-flash-nothinking") == {"thinkingBudget": 0}


def test_reasoning_effort_on_top_of_the_suffix() -> None:
    assert think("gemini-2.5-flash", {"reasoning_effort": "low"}) == {"thinkingBudget": 1024}
    assert think("gemini-2.5-flash-thinking", {"reasoning_effort": "medium"}) == {
        "includeThoughts": True, "thinkingBudget": 8192}
    assert think("gemini-3-pro-preview", {"reasoning_effort": "low"}) == {"thinkingLevel": "LOW"}
    with pytest.raises(InvalidRequest) as caught:
        think("gemini-2.5-pro", {"reasoning_effort": "none"})
    assert caught.value.param == "reasoning_effort"
    with pytest.raises(InvalidRequest):
        think("gemini-2.5-flash", {"reasoning_effort": 3})


def test_google_thinking_config_snake_and_camel() -> None:
    # Google's OpenAI-compatibility example: thinking_budget 800 with thought summaries.
    assert think("gemini-2.5-flash", google={
        "thinking_config": {"thinking_budget": 800, "include_thoughts": True}}) == {
        "thinkingBudget": 800, "includeThoughts": True}
    assert think("gemini-3-flash-preview", google={
        "thinkingConfig": {"thinkingLevel": "minimal", "includeThoughts": True}}) == {
        "thinkingLevel": "MINIMAL", "includeThoughts": True}
    assert think("gemini-2.5-flash-thinking", google={
        "thinking_config": {"include_thoughts": False}}) == {}


@pytest.mark.parametrize(
    ("model", "request_", "google", "param"),
    [
        pytest.param("gemini-2.5-flash", {"reasoning_effort": "low"},
                     {"thinking_config": {"thinking_budget": 100}}, "reasoning_effort",
                     id="effort-and-budget"),
        pytest.param("gemini-2.5-flash", {},
                     {"thinking_config": {"thinking_budget": 100, "thinking_level": "low"}},
                     "google.thinking_config", id="budget-and-level"),
        pytest.param("gemini-2.5-flash", {}, {"thinking_config": {"thinking_budget": "lots"}},
                     "google.thinking_config.thinking_budget", id="budget-type"),
        pytest.param("gemini-2.5-pro", {}, {"thinking_config": {"thinking_budget": 0}},
                     "google.thinking_config.thinking_budget", id="pro-budget-zero"),
        pytest.param("gemini-2.5-pro", {}, {"thinking_config": {"thinking_budget": 64}},
                     "google.thinking_config.thinking_budget", id="pro-budget-below-range"),
        pytest.param("gemini-2.5-flash", {}, {"thinkingConfig": {"thinkingBudget": 30000}},
                     "google.thinking_config.thinking_budget", id="flash-budget-above-range"),
        pytest.param("gemini-3-pro-preview", {}, {"thinking_config": {"thinking_level": "max"}},
                     "google.thinking_config.thinking_level", id="level-unknown"),
        pytest.param("gemini-2.5-flash", {}, {"thinking_config": {"include_thoughts": "yes"}},
                     "google.thinking_config.include_thoughts", id="include-type"),
        pytest.param("gemini-2.5-flash", {}, {"thinking_config": 5}, "google.thinking_config",
                     id="not-an-object"),
    ],
)
def test_thinking_refusals(model: str, request_: dict[str, Any], google: dict[str, Any],
                           param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        think(model, request_, google)
    assert caught.value.param == param


def test_tts_model_answers_with_audio_in_the_mapped_voice() -> None:
    config = output_config("gemini-2.5-flash-preview-tts",
                           {"modalities": ["text", "audio"],
                            "audio": {"voice": "alloy", "format": "wav"}}, {})
    assert config == {
        "responseModalities": ["AUDIO"],
        "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Zephyr"}}},
    }


def test_no_voice_no_speech_config() -> None:
    assert output_config("gemini-2.5-pro-preview-tts", {}, {}) == {
        "responseModalities": ["AUDIO"]}


@pytest.mark.parametrize(
    ("voice", "expected"),
    [("nova", "Aoede"), ("ONYX", "Algenib"), ("Kore", "Kore"), ("puck", "Puck"),
     ({"id": "Charon"}, "Charon"), ("Newvoice", "Newvoice")],
)
def test_voice_names(voice: Any, expected: str) -> None:
    config = output_config("gemini-2.5-flash-preview-tts", {"audio": {"voice": voice}}, {})
    assert config["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"] == expected


def test_voice_table_covers_openai_voices_with_real_gemini_voices() -> None:
    openai_voices = {"alloy", "echo", "fable", "onyx", "nova", "shimmer", "ash", "ballad",
                     "coral", "sage", "verse"}
    assert openai_voices <= set(OPENAI_VOICES)
    assert set(OPENAI_VOICES.values()) <= set(GEMINI_VOICES)


def test_image_models_answer_with_text_and_images() -> None:
    for model in ("gemini-2.0-flash-exp-image-generation", "gemini-2.5-flash-image",
                  "gemini-2.0-flash-preview-image-generation"):
        assert output_config(model, {}, {}) == {"responseModalities": ["TEXT", "IMAGE"]}


def test_text_model_gets_nothing_unless_asked() -> None:
    assert output_config("gemini-2.5-flash", {}, {}) == {}
    assert output_config("gemini-2.5-flash", {"modalities": ["text"]}, {}) == {
        "responseModalities": ["TEXT"]}


def test_google_output_extras() -> None:
    google = {
        "response_modalities": ["image", "TEXT"],
        "image_config": {"aspect_ratio": "16:9", "image_size": "2K"},
        "speech_config": {"multi_speaker_voice_config": {"speaker_voice_configs": [
            {"speaker": "Joe", "voice_config": {"prebuilt_voice_config": {"voice_name": "Kore"}}},
            {"speaker": "Jane", "voice_config": {"prebuilt_voice_config": {"voice_name": "Puck"}}},
        ]}},
    }
    config = output_config("gemini-2.5-flash-image", {"audio": {"voice": "alloy"}}, google)
    assert config == {
        "responseModalities": ["IMAGE", "TEXT"],
        "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"},
        "speechConfig": {"multiSpeakerVoiceConfig": {"speakerVoiceConfigs": [
            {"speaker": "Joe", "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}},
            {"speaker": "Jane", "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Puck"}}},
        ]}},
    }


@pytest.mark.parametrize(
    ("request_", "google", "param"),
    [
        pytest.param({"modalities": "audio"}, {}, "modalities", id="modalities-string"),
        pytest.param({"modalities": ["video"]}, {}, "modalities", id="modalities-unknown"),
        pytest.param({"audio": "alloy"}, {}, "audio", id="audio-string"),
        pytest.param({"audio": {"voice": 7}}, {}, "audio.voice", id="voice-number"),
        pytest.param({}, {"response_modalities": ["SMELL"]}, "google.response_modalities",
                     id="google-modalities"),
        pytest.param({}, {"image_config": "16:9"}, "google.image_config", id="image-config"),
        pytest.param({}, {"speech_config": []}, "google.speech_config", id="speech-config"),
    ],
)
def test_output_refusals(request_: dict[str, Any], google: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        output_config("gemini-2.5-flash-preview-tts", request_, google)
    assert caught.value.param == param


def test_audio_format() -> None:
    assert audio_format({"audio": {"voice": "alloy", "format": "mp3"}}) == "mp3"
    assert audio_format({"audio": {"voice": "alloy", "format": "flac"}}) == "flac"
    assert audio_format({"audio": {"voice": "alloy", "format": "opus"}}) == "opus"
    assert audio_format({"audio": {"voice": "alloy", "format": "pcm16"}}) == "wav"  # as always
    assert audio_format({}) is None
    for wrong in (1, "ogg", "pcm"):  # "pcm" is the speech API's name; chat says "pcm16"
        with pytest.raises(InvalidRequest) as caught:
            audio_format({"audio": {"format": wrong}})
        assert caught.value.param == "audio.format"
    with pytest.raises(InvalidRequest) as caught:
        audio_format({"audio": {"format": "aac"}})  # OpenAI's, but no encoder here
    assert "pcm16" in caught.value.message and "not available" in caught.value.message
