"""OpenAI request parameters → Gemini ``generationConfig``.

    temperature → temperature           top_p → topP             top_k → topK (not OpenAI's)
    max_completion_tokens | max_tokens → maxOutputTokens (max_completion_tokens wins)
    stop → stopSequences (at most 5)    n → candidateCount (1-8)
    presence_penalty / frequency_penalty → presencePenalty / frequencyPenalty     seed → seed
    logprobs → responseLogprobs         top_logprobs → logprobs
    reasoning_effort, model suffix, google.thinking_config → thinkingConfig
    modalities / audio.voice, model family, google.response_modalities / speech_config /
    image_config → responseModalities, speechConfig, imageConfig

Only what the client sent is set: no defaults of ours. Ranges are OpenAI's (Gemini's where
narrower: candidateCount ≤ 8, stopSequences ≤ 5, seed is int32); a wrong type or range is a 400
naming the parameter, and ``null`` means "not given", as in OpenAI's schema.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gemini_gateway.errors import InvalidRequest
from gemini_gateway.translate.audio_encode import available_formats
from gemini_gateway.translate.call import ModelSpec
from gemini_gateway.translate.models import (
    can_disable_thinking,
    check_thinking_budget,
    is_image_model,
    is_tts_model,
    supports_thinking,
    thinking_for_effort,
)
from gemini_gateway.translate.types import GenerationConfig, ThinkingConfig

MAX_STOP_SEQUENCES = 5
MAX_CANDIDATES = 8
_INT32 = (-(2**31), 2**31 - 1)

# Gemini TTS voices (ai.google.dev/gemini-api/docs/speech-generation#voices), for canonical case.
GEMINI_VOICES: tuple[str, ...] = (
    "Zephyr", "Puck", "Charon", "Kore", "Fenrir", "Leda", "Orus", "Aoede", "Callirrhoe",
    "Autonoe", "Enceladus", "Iapetus", "Umbriel", "Algieba", "Despina", "Erinome", "Algenib",
    "Rasalgethi", "Laomedeia", "Achernar", "Alnilam", "Schedar", "Gacrux", "Pulcherrima",
    "Achird", "Zubenelgenubi", "Vindemiatrix", "Sadachbia", "Sadaltager", "Sulafat",
)
# OpenAI voice → the Gemini voice whose described character (Google's voice list) is closest.
OPENAI_VOICES: dict[str, str] = {
    "alloy": "Zephyr",  # neutral, bright
    "ash": "Orus",  # firm
    "ballad": "Sulafat",  # warm
    "coral": "Leda",  # youthful
    "echo": "Charon",  # informative
    "fable": "Puck",  # upbeat, expressive
    "nova": "Aoede",  # breezy
    "onyx": "Algenib",  # deep, gravelly
    "sage": "Sadaltager",  # knowledgeable
    "shimmer": "Despina",  # smooth
    "verse": "Callirrhoe",  # easy-going
    "marin": "Autonoe",  # bright
    "cedar": "Iapetus",  # clear
}
_VOICE_BY_LOWER = {name.lower(): name for name in GEMINI_VOICES}
_MODALITIES = {"text": "TEXT", "audio": "AUDIO", "image": "IMAGE"}
_THINKING_LEVELS = ("minimal", "low", "medium", "high")
_CAMEL_BOUNDARY = re.compile(r"_([a-z0-9])")


def sampling_config(request: Mapping[str, Any]) -> GenerationConfig:
    """The sampling and length parameters, validated and renamed."""
    config: GenerationConfig = {}
    if (value := _number(request, "temperature", 0.0, 2.0)) is not None:
        config["temperature"] = value
    if (value := _number(request, "top_p", 0.0, 1.0)) is not None:
        config["topP"] = value
    if (value := _integer(request, "top_k", 1)) is not None:
        config["topK"] = value
    max_tokens = _integer(request, "max_tokens", 1)
    max_completion = _integer(request, "max_completion_tokens", 1)
    max_output = max_completion if max_completion is not None else max_tokens
    if max_output is not None:
        config["maxOutputTokens"] = max_output
    if stop := _stop_sequences(request.get("stop")):
        config["stopSequences"] = stop
    if (value := _integer(request, "n", 1, MAX_CANDIDATES)) is not None:
        config["candidateCount"] = value
    if (value := _number(request, "presence_penalty", -2.0, 2.0)) is not None:
        config["presencePenalty"] = value
    if (value := _number(request, "frequency_penalty", -2.0, 2.0)) is not None:
        config["frequencyPenalty"] = value
    if (value := _integer(request, "seed", *_INT32)) is not None:
        config["seed"] = value
    logprobs = _boolean(request, "logprobs")
    if logprobs:
        config["responseLogprobs"] = True
    if (value := _integer(request, "top_logprobs", 0, 20)) is not None:
        if not logprobs:
            raise InvalidRequest("top_logprobs needs logprobs: true", param="top_logprobs")
        config["logprobs"] = value
    return config


def thinking_config(
    spec: ModelSpec, request: Mapping[str, Any], google: Mapping[str, Any]
) -> ThinkingConfig:
    """Suffix, then ``reasoning_effort``, then ``google.thinking_config``: the most explicit wins.

    Google documents reasoning_effort and a thinking budget/level as exclusive: both is a 400.
    """
    config: ThinkingConfig = {}
    if spec.include_thoughts:
        config["includeThoughts"] = True
    if spec.thinking_budget is not None:
        config["thinkingBudget"] = spec.thinking_budget
    explicit = _pick(google, "thinking_config", "thinkingConfig")
    if explicit is not None and not isinstance(explicit, Mapping):
        raise InvalidRequest("thinking_config must be an object", param="google.thinking_config")
    explicit = explicit or {}
    budget = _pick(explicit, "thinking_budget", "thinkingBudget")
    level = _pick(explicit, "thinking_level", "thinkingLevel")
    include = _pick(explicit, "include_thoughts", "includeThoughts")
    effort = request.get("reasoning_effort")
    if effort is not None:
        if not isinstance(effort, str):
            raise InvalidRequest("reasoning_effort must be a string", param="reasoning_effort")
        if budget is not None or level is not None:
            raise InvalidRequest(
                "reasoning_effort and google.thinking_config thinking_budget/thinking_level "
                "cannot be used together",
                param="reasoning_effort",
            )
        config.pop("thinkingBudget", None)
        config.update(thinking_for_effort(spec.upstream, effort))
    if budget is not None and level is not None:
        raise InvalidRequest("give thinking_budget or thinking_level, not both",
                             param="google.thinking_config")
    if budget is not None:
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < -1:
            raise InvalidRequest("thinking_budget must be an integer ≥ -1 (-1: dynamic)",
                                 param="google.thinking_config.thinking_budget")
        if budget == 0 and supports_thinking(spec.upstream) and not can_disable_thinking(
            spec.upstream
        ):
            raise InvalidRequest(f"{spec.upstream} cannot turn thinking off (budget 0)",
                                 param="google.thinking_config.thinking_budget")
        check_thinking_budget(spec.upstream, budget, "google.thinking_config.thinking_budget")
        config["thinkingBudget"] = budget
    if level is not None:
        if not isinstance(level, str) or level.lower() not in _THINKING_LEVELS:
            raise InvalidRequest(f"thinking_level must be one of {', '.join(_THINKING_LEVELS)}",
                                 param="google.thinking_config.thinking_level")
        config.pop("thinkingBudget", None)
        config["thinkingLevel"] = level.upper()
    if include is not None:
        if not isinstance(include, bool):
            raise InvalidRequest("include_thoughts must be a boolean",
                                 param="google.thinking_config.include_thoughts")
        config.pop("includeThoughts", None)
        if include:
            config["includeThoughts"] = True
    return config


def output_config(
    model: str, request: Mapping[str, Any], google: Mapping[str, Any]
) -> GenerationConfig:
    """responseModalities, speechConfig and imageConfig, from the model family and the request."""
    config: GenerationConfig = {}
    modalities = _modalities(request.get("modalities"), "modalities", _MODALITIES)
    if is_tts_model(model):
        config["responseModalities"] = ["AUDIO"]  # TTS models answer with audio only
    elif is_image_model(model):
        config["responseModalities"] = ["TEXT", "IMAGE"]
    elif modalities:
        config["responseModalities"] = modalities
    if (voice := _voice(request.get("audio"))) is not None:
        config["speechConfig"] = {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": voice}}}
    speech = _pick(google, "speech_config", "speechConfig")
    if speech is not None:
        if not isinstance(speech, Mapping):
            raise InvalidRequest("speech_config must be an object", param="google.speech_config")
        config["speechConfig"] = _camel_keys(speech)
    google_modalities = _pick(google, "response_modalities", "responseModalities")
    if google_modalities is not None:
        upper = {value.lower(): value for value in _MODALITIES.values()}
        config["responseModalities"] = _modalities(
            google_modalities, "google.response_modalities", upper
        )
    image = _pick(google, "image_config", "imageConfig")
    if image is not None:
        if not isinstance(image, Mapping):
            raise InvalidRequest("image_config must be an object", param="google.image_config")
        config["imageConfig"] = _camel_keys(image)
    return config


CHAT_AUDIO_FORMATS = ("wav", "mp3", "flac", "opus", "pcm16", "aac")  # OpenAI's list


def audio_format(request: Mapping[str, Any]) -> str | None:
    """``audio.format`` for the response side, which encodes the audio: the encoder's name, or a
    400 when it is not OpenAI's or this installation cannot make it.

    ``pcm16`` (which OpenAI requires when streaming) gets a WAV, the samples behind a 44-byte
    header, as the chat endpoint always gave: a client that reads WAV, as most do, keeps working.
    """
    audio = request.get("audio")
    fmt = audio.get("format") if isinstance(audio, Mapping) else None
    if fmt is None:
        return None
    if not isinstance(fmt, str) or fmt not in CHAT_AUDIO_FORMATS:
        raise InvalidRequest(
            f"audio.format must be one of {', '.join(CHAT_AUDIO_FORMATS)}", param="audio.format"
        )
    name = "wav" if fmt == "pcm16" else fmt
    if name not in available_formats():
        usable = ["pcm16" if f == "pcm" else f for f in available_formats()]
        raise InvalidRequest(
            f"audio.format '{fmt}' is not available on this gateway (no encoder installed); "
            f"use one of: {', '.join(usable)}",
            param="audio.format",
        )
    return name


def _voice(audio: object) -> str | None:
    """OpenAI voice names map through OPENAI_VOICES; Gemini voice names pass through."""
    if audio is None:
        return None
    if not isinstance(audio, Mapping):
        raise InvalidRequest("audio must be an object", param="audio")
    voice = audio.get("voice")
    if isinstance(voice, Mapping):  # OpenAI's custom-voice form {"id": "..."}
        voice = voice.get("id")
    if voice is None:
        return None
    if not isinstance(voice, str) or not voice:
        raise InvalidRequest("audio.voice must be a voice name", param="audio.voice")
    lower = voice.lower()
    return OPENAI_VOICES.get(lower) or _VOICE_BY_LOWER.get(lower) or voice


def _modalities(value: object, param: str, names: Mapping[str, str]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(item, str) and item.lower() in names for item in value
    ):
        raise InvalidRequest(f"{param} must be an array of {', '.join(names)}", param=param)
    return list(dict.fromkeys(names[item.lower()] for item in value))


def _stop_sequences(stop: object) -> list[str]:
    if stop is None:
        return []
    sequences = [stop] if isinstance(stop, str) else stop
    if not isinstance(sequences, list) or not all(isinstance(s, str) for s in sequences):
        raise InvalidRequest("stop must be a string or an array of strings", param="stop")
    sequences = [s for s in sequences if s]
    if len(sequences) > MAX_STOP_SEQUENCES:
        raise InvalidRequest(f"stop takes at most {MAX_STOP_SEQUENCES} sequences with Gemini",
                             param="stop")
    return sequences


def _number(request: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    value = request.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"{key} must be a number", param=key)
    if not low <= value <= high:
        raise InvalidRequest(f"{key} must be between {low:g} and {high:g}", param=key)
    return value


def _integer(
    request: Mapping[str, Any], key: str, low: int, high: int | None = None
) -> int | None:
    value = request.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{key} must be an integer", param=key)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidRequest(f"{key} must be {bound}", param=key)
    return value


def _boolean(request: Mapping[str, Any], key: str) -> bool:
    value = request.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRequest(f"{key} must be a boolean", param=key)
    return value


def _pick(mapping: Mapping[str, Any], snake: str, camel: str) -> Any:
    """Google's extras come in snake_case (OpenAI SDKs) or camelCase (REST): accept both."""
    value = mapping.get(snake)
    return mapping.get(camel) if value is None else value


def _camel_keys(value: Any) -> Any:
    """snake_case keys → camelCase, recursively (values untouched), for Gemini's REST JSON."""
    if isinstance(value, Mapping):
        return {
            _CAMEL_BOUNDARY.sub(lambda m: m[1].upper(), str(key)): _camel_keys(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_camel_keys(item) for item in value]
    return value

