"""OpenAI Images API ↔ Gemini image models and Imagen (translate/images.py).

Sizes and response shapes are OpenAI's (CreateImageRequest, ImagesResponse in
shared/schemas/openai-openapi.v2.3.0.yaml); aspect ratios and the predict shape are Google's.
"""

from __future__ import annotations

import base64
from functools import cache
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from gemini_gateway.errors import InvalidRequest, UpstreamError
from gemini_gateway.translate.images import (
    GEMINI_ASPECT_RATIOS,
    IMAGEN_ASPECT_RATIOS,
    GeneratedImage,
    gemini_images,
    image_job_to_gemini,
    image_job_to_imagen,
    image_request,
    image_usage,
    imagen_batches,
    imagen_images,
    images_response,
    size_to_aspect_ratio,
)
from tests.unit.openai_schema import schema_path

FULL_SPEC = "openai-openapi.v2.3.0.yaml"
_URI = "urn:openai-openapi-full"
PNG_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


@cache
def _full_registry() -> Registry:
    text = (schema_path().parent / FULL_SPEC).read_text(encoding="utf-8")
    document = yaml.load(text, Loader=yaml.CSafeLoader)
    return Registry().with_resource(
        _URI, Resource.from_contents(document, default_specification=DRAFT202012)
    )


def assert_valid_full(obj: Any, name: str) -> None:
    """Validate against ``components.schemas[name]`` of OpenAI's full OpenAPI file."""
    validator = Draft202012Validator(
        {"$ref": f"{_URI}#/components/schemas/{name}"}, registry=_full_registry()
    )
    error = best_match(validator.iter_errors(obj))
    if error is not None:
        raise AssertionError(f"not a valid {name} at {list(error.absolute_path)}: {error.message}")


# --- size → aspect ratio ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "ratio"),
    [
        pytest.param("1024x1024", "1:1", id="square"),
        pytest.param("1792x1024", "16:9", id="dalle3-landscape"),
        pytest.param("1024x1792", "9:16", id="dalle3-portrait"),
        pytest.param("1536x1024", "3:2", id="gpt-image-landscape"),
        pytest.param("1024x1536", "2:3", id="gpt-image-portrait"),
        pytest.param("256x256", "1:1", id="dalle2-small"),
        pytest.param("512x512", "1:1", id="dalle2-medium"),
        pytest.param("1536x864", "16:9", id="gpt-image-2-arbitrary"),
        pytest.param("2048x1536", "4:3", id="four-three"),
        pytest.param("1024x1280", "4:5", id="four-five"),
        pytest.param("2520x1080", "21:9", id="ultrawide"),
        pytest.param(None, None, id="absent"),
        pytest.param("auto", None, id="auto"),
    ],
)
def test_size_to_gemini_aspect_ratio(size: str | None, ratio: str | None) -> None:
    assert size_to_aspect_ratio(size) == ratio


def test_imagen_sizes_map_to_imagen_ratios() -> None:
    assert size_to_aspect_ratio("1792x1024", IMAGEN_ASPECT_RATIOS) == "16:9"
    assert size_to_aspect_ratio("1024x1365", IMAGEN_ASPECT_RATIOS) == "3:4"
    with pytest.raises(InvalidRequest):  # 3:2 is 12 % from 4:3, Imagen's nearest
        size_to_aspect_ratio("1536x1024", IMAGEN_ASPECT_RATIOS)


@pytest.mark.parametrize("size", ["3000x1000", "1000x3000", "big", "0x10", "1024", 1024, "x"])
def test_size_far_from_any_ratio_or_malformed_is_400(size: object) -> None:
    with pytest.raises(InvalidRequest) as info:
        size_to_aspect_ratio(size)
    assert info.value.param == "size"


def test_every_ratio_maps_to_itself() -> None:
    for ratio in GEMINI_ASPECT_RATIOS:
        w, h = ratio.split(":")
        assert size_to_aspect_ratio(f"{int(w) * 100}x{int(h) * 100}") == ratio


# --- the request ------------------------------------------------------------------------------


def test_defaults_for_a_gemini_image_model() -> None:
    job = image_request({"model": "gemini-2.5-flash-image", "prompt": "A cute baby sea otter"})
    assert (job.model, job.prompt, job.n, job.response_format, job.aspect_ratio) == (
        "gemini-2.5-flash-image", "A cute baby sea otter", 1, "url", None)
    assert not job.imagen
    assert image_job_to_gemini(job) == {
        "contents": [{"role": "user", "parts": [{"text": "A cute baby sea otter"}]}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]},
    }


def test_size_and_image_config_reach_gemini() -> None:
    job = image_request({
        "model": "models/gemini-3-pro-image-preview", "prompt": "otter", "n": 2,
        "size": "1792x1024", "response_format": "b64_json",
        "extra_body": {"google": {"image_config": {"image_size": "2K"}}},
    })
    safety = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"}]
    body = image_job_to_gemini(job, safety)
    assert job.model == "gemini-3-pro-image-preview" and job.n == 2
    assert body["generationConfig"]["imageConfig"] == {"imageSize": "2K", "aspectRatio": "16:9"}
    assert body["safetySettings"] == safety


def test_explicit_image_config_aspect_ratio_wins_over_size() -> None:
    job = image_request({"model": "gemini-2.5-flash-image", "prompt": "otter",
                         "size": "1024x1024", "google": {"imageConfig": {"aspectRatio": "4:5"}}})
    assert job.aspect_ratio == "4:5"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        pytest.param({"model": None}, "model", id="no-model"),
        pytest.param({"model": "gemini-2.5-flash"}, "model", id="text-model"),
        pytest.param({"model": "dall-e-3"}, "model", id="openai-model"),
        pytest.param({"prompt": ""}, "prompt", id="empty-prompt"),
        pytest.param({"prompt": 5}, "prompt", id="prompt-not-text"),
        pytest.param({"n": 0}, "n", id="n-zero"),
        pytest.param({"n": 11}, "n", id="n-over-10"),
        pytest.param({"n": True}, "n", id="n-bool"),
        pytest.param({"response_format": "png"}, "response_format", id="bad-format"),
        pytest.param({"size": "100x900"}, "size", id="bad-size"),
        pytest.param({"google": {"image_config": "16:9"}}, "google.image_config", id="bad-config"),
    ],
)
def test_invalid_requests_name_the_parameter(change: dict[str, Any], param: str) -> None:
    request = {"model": "gemini-2.5-flash-image", "prompt": "otter", **change}
    with pytest.raises(InvalidRequest) as info:
        image_request(request)
    assert info.value.param == param


def test_null_optionals_mean_defaults() -> None:
    job = image_request({"model": "gemini-2.5-flash-image", "prompt": "otter", "n": None,
                         "size": None, "response_format": None, "quality": None})
    assert (job.n, job.response_format, job.aspect_ratio) == (1, "url", None)


# --- Imagen -----------------------------------------------------------------------------------


def test_imagen_predict_body() -> None:
    job = image_request({"model": "imagen-4.0-generate-001", "prompt": "Robot holding a red "
                         "skateboard", "n": 3, "size": "1024x1792"})
    assert job.imagen
    assert image_job_to_imagen(job, 3) == {
        "instances": [{"prompt": "Robot holding a red skateboard"}],
        "parameters": {"sampleCount": 3, "aspectRatio": "9:16"},
    }


@pytest.mark.parametrize(("n", "batches"), [(1, [1]), (4, [4]), (5, [4, 1]), (10, [4, 4, 2])])
def test_imagen_makes_at_most_four_per_call(n: int, batches: list[int]) -> None:
    assert imagen_batches(n) == batches


def test_imagen_predictions() -> None:
    images = imagen_images({"predictions": [
        {"bytesBase64Encoded": PNG_B64, "mimeType": "image/png"},
        {"bytesBase64Encoded": PNG_B64, "mimeType": "image/jpeg", "prompt": "a better prompt"},
        {"raiFilteredReason": "filtered"},
    ]})
    assert images == [GeneratedImage("image/png", PNG_B64),
                      GeneratedImage("image/jpeg", PNG_B64, "a better prompt")]


@pytest.mark.parametrize("response", [{}, {"predictions": [{"raiFilteredReason": "Unsafe"}]}])
def test_imagen_all_filtered_is_content_policy_400(response: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as info:
        imagen_images(response)
    assert info.value.code == "content_policy_violation"


# --- Gemini responses -------------------------------------------------------------------------


def _response(*parts: dict[str, Any], finish: str = "STOP") -> dict[str, Any]:
    return {"candidates": [{"content": {"role": "model", "parts": list(parts)},
                            "finishReason": finish, "index": 0}]}


def test_gemini_images_takes_inline_images_only() -> None:
    response = _response({"text": "Here is your otter"},
                         {"inlineData": {"mimeType": "image/png", "data": PNG_B64}},
                         {"inlineData": {"mimeType": "image/webp", "data": PNG_B64}})
    assert gemini_images(response) == [GeneratedImage("image/png", PNG_B64),
                                       GeneratedImage("image/webp", PNG_B64)]


def test_blocked_prompt_is_content_policy_400() -> None:
    with pytest.raises(InvalidRequest) as info:
        gemini_images({"promptFeedback": {"blockReason": "SAFETY"}})
    assert info.value.code == "content_policy_violation"


def test_image_safety_finish_is_content_policy_400() -> None:
    with pytest.raises(InvalidRequest) as info:
        gemini_images(_response(finish="IMAGE_SAFETY"))
    assert info.value.status == 400 and "IMAGE_SAFETY" in info.value.message


def test_text_only_answer_is_502_with_the_text() -> None:
    with pytest.raises(UpstreamError) as info:
        gemini_images(_response({"text": "I can only describe otters."}, finish="NO_IMAGE"))
    assert "I can only describe otters." in info.value.message


# --- ImagesResponse ---------------------------------------------------------------------------


def test_images_response_with_urls_is_valid_openai() -> None:
    images = [GeneratedImage("image/png", PNG_B64), GeneratedImage("image/png", PNG_B64, "r")]
    made: list[tuple[str, str]] = []

    def url_for(mime: str, data: str) -> str:
        made.append((mime, data))
        return f"http://127.0.0.1/gemini/v1/files/{len(made)}"

    result = images_response(images, created=1713833628, response_format="url", url_for=url_for)
    assert result == {"created": 1713833628, "data": [
        {"url": "http://127.0.0.1/gemini/v1/files/1"},
        {"url": "http://127.0.0.1/gemini/v1/files/2", "revised_prompt": "r"},
    ]}
    assert made == [("image/png", PNG_B64)] * 2
    assert_valid_full(result, "ImagesResponse")


def test_images_response_b64_with_usage_is_valid_openai() -> None:
    usage = image_usage([
        {"promptTokenCount": 5, "candidatesTokenCount": 1295, "totalTokenCount": 1300,
         "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 5}]},
        {"promptTokenCount": 5, "candidatesTokenCount": 1290, "thoughtsTokenCount": 10},
    ])
    assert usage == {"input_tokens": 10, "output_tokens": 2595, "total_tokens": 2605,
                     "input_tokens_details": {"text_tokens": 10, "image_tokens": 0}}
    result = images_response([GeneratedImage("image/png", PNG_B64)], created=1,
                             response_format="b64_json", url_for=lambda m, d: "unused",
                             usage=usage)
    assert result["data"] == [{"b64_json": PNG_B64}]
    assert_valid_full(result, "ImagesResponse")


def test_no_usage_metadata_means_no_usage() -> None:
    assert image_usage([{}, {}]) is None
