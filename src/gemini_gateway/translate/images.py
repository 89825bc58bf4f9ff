"""OpenAI Images API (``POST /images/generations``) ↔ Gemini image models and Imagen.

Request (OpenAI CreateImageRequest, shared/schemas/openai-openapi.v2.3.0.yaml):

    prompt → the user text (Gemini) or ``instances[0].prompt`` (Imagen)
    model  → required here (OpenAI's default, dall-e-2, means nothing to Gemini)
    n (1-10) → Gemini image models: n generateContent calls (they refuse candidateCount > 1);
               Imagen: ``parameters.sampleCount``, at most 4 per predict call
    size "WxH" → aspect ratio: the closest ratio the family takes, within 10 %, else a 400
               (1024x1024 → 1:1, 1792x1024 → 16:9, 1024x1792 → 9:16, 1536x1024 → 3:2, ...);
               ``auto`` or absent → the model's default
    response_format url | b64_json (default url)
    google.image_config (``extra_body``) → Gemini ``imageConfig``; its aspect ratio wins over size
    quality, style, background, output_format, moderation, user → ignored (no Gemini equivalent)

Response (OpenAI ImagesResponse): ``created``, ``data[]`` of ``{url}`` or ``{b64_json}``, and
``usage`` (ImageGenUsage) when Gemini reported token counts. Imagen's enhanced prompt, when it
returns one, becomes ``revised_prompt``. A blocked prompt or a safety-filtered image is OpenAI's
400 ``content_policy_violation``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gemini_gateway.errors import InvalidRequest, UpstreamError
from gemini_gateway.translate.models import bare_model, is_image_model, is_imagen
from gemini_gateway.translate.request import google_extras

MAX_IMAGES = 10
IMAGEN_MAX_SAMPLES = 4
# Aspect ratios Gemini image models take (imageConfig.aspectRatio, ai.google.dev image docs).
GEMINI_ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
# Imagen's parameters.aspectRatio values (ai.google.dev/gemini-api/docs/imagen).
IMAGEN_ASPECT_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
RATIO_TOLERANCE = 0.10  # a size within 10 % of a ratio maps to it
RESPONSE_FORMATS = ("url", "b64_json")
_SIZE = re.compile(r"^\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*$")
_CAMEL_BOUNDARY = re.compile(r"_([a-z0-9])")
_SAFETY_FINISH = frozenset({
    "SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT", "BLOCKLIST",
    "SPII", "RECITATION", "IMAGE_RECITATION",
})


@dataclass(frozen=True)
class ImageJob:
    """A validated images/generations request."""

    model: str  # bare upstream model id
    prompt: str
    n: int = 1
    response_format: str = "url"
    aspect_ratio: str | None = None
    image_config: dict[str, Any] = field(default_factory=dict)  # Gemini imageConfig, camelCase

    @property
    def imagen(self) -> bool:
        return is_imagen(self.model)


@dataclass(frozen=True)
class GeneratedImage:
    mime: str
    data_b64: str
    revised_prompt: str | None = None


def image_request(request: Mapping[str, Any]) -> ImageJob:
    """Validate an OpenAI CreateImageRequest for a Gemini image model or Imagen."""
    if not isinstance(request, Mapping):
        raise InvalidRequest("the request body must be a JSON object")
    model = request.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest(
            "model is required: a Gemini image model (e.g. gemini-2.5-flash-image) or an "
            "Imagen model (e.g. imagen-4.0-generate-001)",
            param="model",
        )
    model = bare_model(model.strip())
    if not (is_imagen(model) or is_image_model(model)):
        raise InvalidRequest(
            f"{model} does not generate images; use a Gemini image model (…-image…) or an "
            "Imagen model (imagen-…)",
            param="model",
        )
    prompt = request.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest("prompt is required and must be a non-empty string", param="prompt")
    n = request.get("n")
    if n is None:
        n = 1
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_IMAGES:
        raise InvalidRequest(f"n must be an integer from 1 to {MAX_IMAGES}", param="n")
    response_format = request.get("response_format") or "url"
    if response_format not in RESPONSE_FORMATS:
        raise InvalidRequest("response_format must be 'url' or 'b64_json'",
                             param="response_format")
    ratios = IMAGEN_ASPECT_RATIOS if is_imagen(model) else GEMINI_ASPECT_RATIOS
    aspect = size_to_aspect_ratio(request.get("size"), ratios)
    image_config = _image_config(request)
    if "aspectRatio" in image_config:
        aspect = str(image_config["aspectRatio"])
    return ImageJob(model, prompt, n, response_format, aspect, image_config)


def size_to_aspect_ratio(size: object, ratios: Sequence[str] = GEMINI_ASPECT_RATIOS) -> str | None:
    """OpenAI ``size`` ("WxH") → the closest aspect ratio in ``ratios``; None for auto/absent."""
    if size is None or size == "auto":
        return None
    match = _SIZE.match(size) if isinstance(size, str) else None
    width, height = (int(match[1]), int(match[2])) if match else (0, 0)
    if not width or not height:
        raise InvalidRequest("size must be 'auto' or WIDTHxHEIGHT, e.g. 1024x1024", param="size")
    wanted = math.log(width / height)
    best = min(ratios, key=lambda r: abs(math.log(_ratio(r)) - wanted))
    if abs(math.log(_ratio(best)) - wanted) > math.log(1 + RATIO_TOLERANCE):
        raise InvalidRequest(
            f"size {width}x{height} is not close to an aspect ratio this model makes "
            f"({', '.join(ratios)}); e.g. 1024x1024, 1536x1024, 1024x1536, 1792x1024, 1024x1792",
            param="size",
        )
    return best


def _ratio(text: str) -> float:
    w, h = text.split(":")
    return int(w) / int(h)


def _image_config(request: Mapping[str, Any]) -> dict[str, Any]:
    google = google_extras(request)
    config = google.get("image_config", google.get("imageConfig"))
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise InvalidRequest("image_config must be an object", param="google.image_config")
    return {_CAMEL_BOUNDARY.sub(lambda m: m[1].upper(), str(k)): v for k, v in config.items()}


# --- Gemini image models: generateContent ------------------------------------------------------


def image_job_to_gemini(
    job: ImageJob, safety: Sequence[Mapping[str, object]] = ()
) -> dict[str, Any]:
    """One generateContent body; the caller sends it ``job.n`` times for n images."""
    config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"]}
    image_config = dict(job.image_config)
    if job.aspect_ratio:
        image_config["aspectRatio"] = job.aspect_ratio
    if image_config:
        config["imageConfig"] = image_config
    body: dict[str, Any] = {
        "contents": [{"role": "user", "parts": [{"text": job.prompt}]}],
        "generationConfig": config,
    }
    if safety:
        body["safetySettings"] = [dict(s) for s in safety]
    return body


def gemini_images(response: Mapping[str, Any]) -> list[GeneratedImage]:
    """The images of a GenerateContentResponse; a 400 when the prompt or image was blocked."""
    feedback = response.get("promptFeedback") or {}
    candidates = response.get("candidates") or []
    if not candidates and feedback.get("blockReason"):
        raise _policy_violation(f"the prompt was blocked ({feedback['blockReason']})")
    images: list[GeneratedImage] = []
    reasons: list[str] = []
    texts: list[str] = []
    for candidate in candidates:
        for part in (candidate.get("content") or {}).get("parts") or ():
            blob = part.get("inlineData")
            if isinstance(blob, Mapping) and str(blob.get("mimeType", "")).startswith("image/"):
                images.append(GeneratedImage(str(blob["mimeType"]), str(blob.get("data", ""))))
            elif isinstance(part.get("text"), str) and not part.get("thought"):
                texts.append(part["text"])
        if candidate.get("finishReason"):
            reasons.append(str(candidate["finishReason"]))
    if not images:
        blocked = [r for r in reasons if r in _SAFETY_FINISH]
        if blocked:
            raise _policy_violation(f"the image was filtered ({blocked[0]})")
        said = " ".join(texts).strip()
        raise UpstreamError(
            "The model returned no image" + (f"; it said: {said[:300]}" if said else ".")
        )
    return images


# --- Imagen: predict --------------------------------------------------------------------------


def imagen_batches(n: int) -> list[int]:
    """Sample counts per predict call: Imagen makes at most 4 images a call."""
    full, rest = divmod(n, IMAGEN_MAX_SAMPLES)
    return [IMAGEN_MAX_SAMPLES] * full + ([rest] if rest else [])


def image_job_to_imagen(job: ImageJob, samples: int) -> dict[str, Any]:
    """``models/{model}:predict`` body: one instance, ``sampleCount`` and ``aspectRatio``."""
    parameters: dict[str, Any] = {"sampleCount": samples}
    if job.aspect_ratio:
        parameters["aspectRatio"] = job.aspect_ratio
    return {"instances": [{"prompt": job.prompt}], "parameters": parameters}


def imagen_images(response: Mapping[str, Any]) -> list[GeneratedImage]:
    """``predictions[].bytesBase64Encoded``; filtered ones are absent or carry
    ``raiFilteredReason``."""
    images: list[GeneratedImage] = []
    filtered: list[str] = []
    for prediction in response.get("predictions") or ():
        if not isinstance(prediction, Mapping):
            continue
        data = prediction.get("bytesBase64Encoded")
        if isinstance(data, str) and data:
            revised = prediction.get("prompt")
            images.append(GeneratedImage(str(prediction.get("mimeType") or "image/png"), data,
                                         revised if isinstance(revised, str) else None))
        elif prediction.get("raiFilteredReason"):
            filtered.append(str(prediction["raiFilteredReason"]))
    if not images:
        # Imagen leaves filtered images out of ``predictions`` (the reason only comes with
        # includeRaiReason): an empty answer means the safety filter took them all.
        why = filtered[0][:300] if filtered else "Imagen returned no image"
        raise _policy_violation(f"the image was filtered: {why}")
    return images


def _policy_violation(why: str) -> InvalidRequest:
    return InvalidRequest(f"Your request was rejected by the safety system: {why}.",
                          param="prompt", code="content_policy_violation")


# --- OpenAI ImagesResponse --------------------------------------------------------------------


def images_response(
    images: Iterable[GeneratedImage],
    *,
    created: int,
    response_format: str,
    url_for: Callable[[str, str], str],
    usage: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """OpenAI's ImagesResponse; ``url_for(mime, data_b64)`` makes each image's URL."""
    data = []
    for image in images:
        item: dict[str, Any] = (
            {"b64_json": image.data_b64} if response_format == "b64_json"
            else {"url": url_for(image.mime, image.data_b64)}
        )
        if image.revised_prompt:
            item["revised_prompt"] = image.revised_prompt
        data.append(item)
    out: dict[str, Any] = {"created": created, "data": data}
    if usage:
        out["usage"] = dict(usage)
    return out


def image_usage(usage_metadata: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Gemini usageMetadata of every call, summed as OpenAI's ImageGenUsage; None if none."""
    seen = False
    total = {"input": 0, "output": 0, "text": 0, "image": 0}
    for usage in usage_metadata:
        if not usage:
            continue
        seen = True
        prompt = int(usage.get("promptTokenCount") or 0)
        total["input"] += prompt
        total["output"] += int(usage.get("candidatesTokenCount") or 0) + int(
            usage.get("thoughtsTokenCount") or 0
        )
        by_modality = {
            str(d.get("modality")): int(d.get("tokenCount") or 0)
            for d in usage.get("promptTokensDetails") or () if isinstance(d, Mapping)
        }
        total["image"] += by_modality.get("IMAGE", 0)
        total["text"] += by_modality.get("TEXT", prompt - by_modality.get("IMAGE", 0))
    if not seen:
        return None
    return {
        "input_tokens": total["input"],
        "output_tokens": total["output"],
        "total_tokens": total["input"] + total["output"],
        "input_tokens_details": {"text_tokens": total["text"], "image_tokens": total["image"]},
    }
