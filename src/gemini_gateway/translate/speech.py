"""OpenAI speech API (``POST /audio/speech``) → a Gemini TTS request, and its audio back.

Request (OpenAI CreateSpeechRequest, shared/schemas/openai-openapi.v2.3.0.yaml):

    model  → a Gemini TTS model (``…-tts``), required
    input  → the text to speak (at most 4096 characters, as OpenAI)
    voice  → speechConfig.voiceConfig.prebuiltVoiceConfig.voiceName: Gemini voice names (Kore,
             Puck, …) pass through; OpenAI's names map as ``generation.OPENAI_VOICES`` documents;
             ``{"id": …}`` is read as a name. Absent: Gemini's default voice.
    instructions → a style prompt before the text: ``"<instructions>: <input>"``, the form
             Google's speech guide uses ("Say cheerfully: Have a wonderful day!")
    speed (0.25-4) → Gemini has no rate parameter; a speed other than 1 becomes words in the same
             style prompt ("Speak fast (about 1.5× normal speed)"), which TTS models follow
             loosely. We do not resample: that would change the pitch.
    response_format → wav | pcm always; mp3, flac, opus where an encoder is installed (the
             route decides); absent → mp3 when it can, else wav
    stream_format → ``audio`` (raw bytes, chunked) or ``sse`` (speech.audio.delta/done events)
    google.speech_config (``extra_body``) → speechConfig as given, e.g. two-speaker dialogue
             (multiSpeakerVoiceConfig); it replaces the voice mapping.

Gemini answers with ``inlineData`` ``audio/L16;codec=pcm;rate=24000``: 16-bit little-endian mono.
A streamed WAV starts with a header whose sizes are 0xFFFFFFFF ("until the end of the stream"),
because the length is unknown when the first bytes leave; players and Python's ``wave`` read such
a file to its end. ``audio.wav_stream_header`` writes it.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gemini_gateway.errors import InvalidRequest, UpstreamError
from gemini_gateway.translate.audio import is_pcm_audio, pcm_format
from gemini_gateway.translate.generation import GEMINI_VOICES, OPENAI_VOICES
from gemini_gateway.translate.models import bare_model, is_tts_model
from gemini_gateway.translate.request import google_extras

MAX_INPUT_CHARS = 4096
MIN_SPEED, MAX_SPEED = 0.25, 4.0
OPENAI_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
STREAM_FORMATS = ("audio", "sse")
_VOICE_BY_LOWER = {name.lower(): name for name in GEMINI_VOICES}
_CAMEL_BOUNDARY = re.compile(r"_([a-z0-9])")
_SAFETY_FINISH = frozenset({"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION"})


@dataclass(frozen=True)
class SpeechJob:
    """A validated audio/speech request."""

    model: str  # bare upstream model id
    prompt: str  # what Gemini is asked to say, style prompt included
    response_format: str | None  # None: the route's default
    stream_format: str = "audio"
    speech_config: dict[str, Any] = field(default_factory=dict)  # Gemini speechConfig
    input_chars: int = 0


def speech_request(request: Mapping[str, Any]) -> SpeechJob:
    """Validate an OpenAI CreateSpeechRequest for a Gemini TTS model."""
    if not isinstance(request, Mapping):
        raise InvalidRequest("the request body must be a JSON object")
    model = request.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("model is required, e.g. gemini-2.5-flash-preview-tts",
                             param="model")
    model = bare_model(model.strip())
    if not is_tts_model(model):
        raise InvalidRequest(
            f"{model} is not a speech model; use a Gemini TTS model such as "
            "gemini-2.5-flash-preview-tts or gemini-2.5-pro-preview-tts",
            param="model",
        )
    text = request.get("input")
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest("input is required and must be a non-empty string", param="input")
    if len(text) > MAX_INPUT_CHARS:
        raise InvalidRequest(f"input is longer than {MAX_INPUT_CHARS} characters", param="input")
    instructions = request.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise InvalidRequest("instructions must be a string", param="instructions")
    fmt = request.get("response_format")
    if fmt is not None and fmt not in OPENAI_FORMATS:
        raise InvalidRequest(f"response_format must be one of {', '.join(OPENAI_FORMATS)}",
                             param="response_format")
    stream_format = request.get("stream_format") or "audio"
    if stream_format not in STREAM_FORMATS:
        raise InvalidRequest("stream_format must be 'audio' or 'sse'", param="stream_format")
    speed = _speed(request.get("speed"))
    config = _speech_config(request)
    if not config and (voice := voice_name(request.get("voice"))) is not None:
        config = {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": voice}}}
    return SpeechJob(
        model=model,
        prompt=speech_prompt(text, instructions, speed),
        response_format=fmt,
        stream_format=stream_format,
        speech_config=config,
        input_chars=len(text),
    )


def voice_name(voice: object) -> str | None:
    """OpenAI voice → Gemini voice (documented table); Gemini names pass through, case fixed."""
    if isinstance(voice, Mapping):  # OpenAI's custom-voice form {"id": "..."}
        voice = voice.get("id")
    if voice is None:
        return None
    if not isinstance(voice, str) or not voice.strip():
        raise InvalidRequest("voice must be a voice name such as Kore, Puck or alloy",
                             param="voice")
    lower = voice.strip().lower()
    return OPENAI_VOICES.get(lower) or _VOICE_BY_LOWER.get(lower) or voice.strip()


def speech_prompt(text: str, instructions: str | None, speed: float) -> str:
    """The text Gemini speaks, led by a style prompt when instructions or speed ask for one."""
    styles = []
    if instructions and instructions.strip():
        styles.append(instructions.strip().rstrip(":").rstrip())
    if speed != 1.0:
        pace = "slowly" if speed < 1 else "fast"
        styles.append(f"Speak {pace} (about {speed:g}× normal speed)")
    if not styles:
        return text
    return ". ".join(styles) + ": " + text


def _speed(value: object) -> float:
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest("speed must be a number", param="speed")
    if not MIN_SPEED <= value <= MAX_SPEED:
        raise InvalidRequest(f"speed must be from {MIN_SPEED} to {MAX_SPEED}", param="speed")
    return float(value)


def _speech_config(request: Mapping[str, Any]) -> dict[str, Any]:
    google = google_extras(request)
    config = google.get("speech_config", google.get("speechConfig"))
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise InvalidRequest("speech_config must be an object", param="google.speech_config")
    return _camel_keys(config)


def _camel_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {_CAMEL_BOUNDARY.sub(lambda m: m[1].upper(), str(k)): _camel_keys(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_camel_keys(v) for v in value]
    return value


def speech_job_to_gemini(
    job: SpeechJob, safety: Sequence[Mapping[str, object]] = ()
) -> dict[str, Any]:
    """The generateContent body: the prompt, AUDIO only, and the voice."""
    config: dict[str, Any] = {"responseModalities": ["AUDIO"]}
    if job.speech_config:
        config["speechConfig"] = job.speech_config
    body: dict[str, Any] = {
        "contents": [{"role": "user", "parts": [{"text": job.prompt}]}],
        "generationConfig": config,
    }
    if safety:
        body["safetySettings"] = [dict(s) for s in safety]
    return body


@dataclass(frozen=True)
class PcmChunk:
    pcm: bytes
    rate: int
    channels: int


def event_pcm(event: Mapping[str, Any]) -> list[PcmChunk]:
    """The PCM audio in one response or stream event; a 400 when the prompt or audio was blocked.

    Only PCM (``audio/L16``, ``audio/pcm``) is taken: that is what Gemini TTS returns.
    """
    feedback = event.get("promptFeedback") or {}
    candidates = event.get("candidates") or []
    if not candidates and feedback.get("blockReason"):
        raise InvalidRequest(f"The input was blocked by the safety system "
                             f"({feedback['blockReason']}).", param="input",
                             code="content_policy_violation")
    out: list[PcmChunk] = []
    for candidate in candidates[:1]:  # speech has one candidate; others would interleave
        for part in (candidate.get("content") or {}).get("parts") or ():
            blob = part.get("inlineData")
            if isinstance(blob, Mapping) and is_pcm_audio(str(blob.get("mimeType", ""))):
                rate, channels = pcm_format(str(blob["mimeType"]))
                out.append(PcmChunk(_decode_base64(str(blob.get("data", ""))), rate, channels))
        reason = candidate.get("finishReason")
        if not out and reason in _SAFETY_FINISH:
            raise InvalidRequest(f"The audio was stopped by the safety system ({reason}).",
                                 param="input", code="content_policy_violation")
    return out


def no_audio_error() -> UpstreamError:
    return UpstreamError("The model returned no audio.")


def _decode_base64(data: str) -> bytes:
    data = data.strip()
    padded = data + "=" * (-len(data) % 4)
    try:
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return base64.b64decode(padded)


def speech_usage(usage_metadata: Mapping[str, Any] | None) -> dict[str, int]:
    """Gemini usageMetadata as the speech SSE's ``usage`` (input/output/total tokens)."""
    usage = usage_metadata or {}
    prompt = int(usage.get("promptTokenCount") or 0)
    output = int(usage.get("candidatesTokenCount") or 0)
    total = int(usage.get("totalTokenCount") or 0) or prompt + output
    return {"input_tokens": prompt, "output_tokens": output, "total_tokens": total}
