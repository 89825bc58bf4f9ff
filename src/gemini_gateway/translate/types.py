"""Wire shapes the request translator reads and writes, as TypedDicts.

OpenAI side: the parts of ``CreateChatCompletionRequest`` we read
(openai-chat-completions.subset.json).
Gemini side: ``GenerateContentRequest`` in REST JSON, camelCase (gemini-v1beta schemas in
shared/schemas). ``total=False`` where the wire format makes a field optional.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

# --- OpenAI (input) ---------------------------------------------------------------------------

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class ImageURL(TypedDict, total=False):
    url: str
    detail: Literal["auto", "low", "high"]


class InputAudio(TypedDict):
    data: str  # base64
    format: str  # "wav" | "mp3"


class FileRef(TypedDict, total=False):
    filename: str
    file_data: str  # base64 or data: URL
    file_id: str


class TextPart(TypedDict):
    type: Literal["text"]
    text: str


class ImagePart(TypedDict):
    type: Literal["image_url"]
    image_url: ImageURL


class AudioPart(TypedDict):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FilePart(TypedDict):
    type: Literal["file"]
    file: FileRef


MediaPart = ImagePart | AudioPart | FilePart


class ChatMessage(TypedDict, total=False):
    role: Role
    content: str | list[dict[str, Any]] | None
    name: str
    reasoning_content: str  # thought text a client echoes back; never sent upstream
    tool_calls: list[dict[str, Any]]
    tool_call_id: str


# --- Gemini (output) --------------------------------------------------------------------------


class Blob(TypedDict):
    mimeType: str
    data: str  # base64


class FileData(TypedDict, total=False):
    mimeType: str
    fileUri: str


class Part(TypedDict, total=False):
    text: str
    thought: bool
    thoughtSignature: str
    inlineData: Blob
    fileData: FileData
    functionCall: dict[str, Any]
    functionResponse: dict[str, Any]


class Content(TypedDict, total=False):
    role: Literal["user", "model"]
    parts: list[Part]


class SafetySetting(TypedDict):
    category: str
    threshold: str


class ThinkingConfig(TypedDict, total=False):
    includeThoughts: bool
    thinkingBudget: int
    thinkingLevel: str  # MINIMAL | LOW | MEDIUM | HIGH (Gemini 3)


class ImageConfig(TypedDict, total=False):
    aspectRatio: str
    imageSize: str


class PrebuiltVoiceConfig(TypedDict):
    voiceName: str


class VoiceConfig(TypedDict):
    prebuiltVoiceConfig: PrebuiltVoiceConfig


class SpeechConfig(TypedDict, total=False):
    voiceConfig: VoiceConfig
    multiSpeakerVoiceConfig: dict[str, Any]
    languageCode: str


class GenerationConfig(TypedDict, total=False):
    temperature: float
    topP: float
    topK: int
    maxOutputTokens: int
    stopSequences: list[str]
    candidateCount: int
    presencePenalty: float
    frequencyPenalty: float
    seed: int
    responseLogprobs: bool
    logprobs: int
    responseModalities: list[str]
    speechConfig: SpeechConfig
    thinkingConfig: ThinkingConfig
    imageConfig: ImageConfig
    responseMimeType: str
    responseSchema: dict[str, Any]
    responseJsonSchema: dict[str, Any]


class GenerateContentRequest(TypedDict, total=False):
    contents: list[Content]
    systemInstruction: Content
    generationConfig: GenerationConfig
    safetySettings: list[SafetySetting]
    cachedContent: str
    tools: list[dict[str, Any]]
    toolConfig: dict[str, Any]
