"""Model names and families: suffixes, predicates and the reasoning_effort mapping.

Expected values come from Google's thinking guide and OpenAI-compatibility page (effort low/medium/
high → 1024/8192/24576 on 2.5; none turns thinking off where the model allows it) and the product
page's model list.
"""

from __future__ import annotations

import pytest

from gemini_gateway.errors import InvalidRequest
from gemini_gateway.translate.call import ModelSpec
from gemini_gateway.translate.models import (
    PRODUCT_MODELS,
    can_disable_thinking,
    is_gemini3,
    is_gemini25,
    is_image_model,
    is_imagen,
    is_tts_model,
    parse_model,
    supports_thinking,
    thinking_for_effort,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("gemini-2.0-flash", ModelSpec("gemini-2.0-flash", "gemini-2.0-flash"),
                     id="plain"),
        pytest.param("models/gemini-2.5-pro",
                     ModelSpec("models/gemini-2.5-pro", "gemini-2.5-pro"), id="models-prefix"),
        pytest.param("gemini-2.5-flash-thinking",
                     ModelSpec("gemini-2.5-flash-thinking", "gemini-2.5-flash",
                               include_thoughts=True), id="thinking"),
        pytest.param("gemini-2.5-pro-thinking",
                     ModelSpec("gemini-2.5-pro-thinking", "gemini-2.5-pro", include_thoughts=True),
                     id="pro-thinking"),
        pytest.param("gemini-2.5-flash-thinking-2048",
                     ModelSpec("gemini-2.5-flash-thinking-2048", "gemini-2.5-flash",
                               include_thoughts=True, thinking_budget=2048), id="thinking-budget"),
        pytest.param("models/gemini-2.5-flash-nothinking",
                     ModelSpec("models/gemini-2.5-flash-nothinking", "gemini-2.5-flash",
                               thinking_budget=0), id="nothinking"),
        pytest.param("gemini-2.5-flash-lite-nothinking",
                     ModelSpec("gemini-2.5-flash-lite-nothinking", "gemini-2.5-flash-lite",
                               thinking_budget=0), id="lite-nothinking"),
        pytest.param("gemini-2.0-flash-nothinking",
                     ModelSpec("gemini-2.0-flash-nothinking", "gemini-2.0-flash"),
                     id="nothinking-on-a-model-that-never-thinks"),
        pytest.param("gemini-3-pro-preview-thinking",
                     ModelSpec("gemini-3-pro-preview-thinking", "gemini-3-pro-preview",
                               include_thoughts=True), id="gemini3-thinking"),
        pytest.param("gemini-2.0-flash-thinking-exp-01-21",
                     ModelSpec("gemini-2.0-flash-thinking-exp-01-21",
                               "gemini-2.0-flash-thinking-exp-01-21"),
                     id="official-name-containing-thinking"),
    ],
)
def test_parse_model(name: str, expected: ModelSpec) -> None:
    assert parse_model(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("gemini-2.5-pro-nothinking", id="2.5-pro-always-thinks"),
        pytest.param("gemini-3-pro-preview-nothinking", id="gemini3-always-thinks"),
        pytest.param("gemini-3-flash-preview-nothinking", id="gemini3-flash-always-thinks"),
        pytest.param("gemini-2.0-flash-thinking", id="thinking-on-non-thinking-model"),
        pytest.param("gemini-2.5-flash-preview-tts-thinking", id="thinking-on-tts"),
        pytest.param("", id="empty"),
        pytest.param("models/", id="prefix-only"),
        pytest.param(None, id="missing"),
        pytest.param(42, id="not-a-string"),
    ],
)
def test_parse_model_refuses(name: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_model(name)
    assert caught.value.param == "model"
    assert caught.value.status == 400


def test_product_models_are_the_product_page_list() -> None:
    assert PRODUCT_MODELS == (
        "gemini-2.0-flash",
        "gemini-2.0-flash-preview-image-generation",
        "gemini-2.5-flash-preview-05-20",
        "gemini-2.5-flash-preview-tts",
        "gemini-2.5-pro-preview-tts",
        "gemini-2.5-flash",
        "gemini-2.5-pro",
        "gemini-2.5-flash-thinking",
        "gemini-2.5-pro-thinking",
    )
    for name in PRODUCT_MODELS:  # every listed name is accepted
        assert parse_model(name).requested == name


@pytest.mark.parametrize(
    ("model", "gemini3", "gemini25", "image", "tts", "imagen", "thinks", "can_disable"),
    [
        ("gemini-2.0-flash", False, False, False, False, False, False, False),
        ("gemini-2.0-flash-preview-image-generation", False, False, True, False, False, False,
         False),
        ("gemini-2.0-flash-exp-image-generation", False, False, True, False, False, False, False),
        ("gemini-2.5-flash", False, True, False, False, False, True, True),
        ("gemini-2.5-flash-preview-05-20", False, True, False, False, False, True, True),
        ("gemini-2.5-flash-lite", False, True, False, False, False, True, True),
        ("gemini-2.5-pro", False, True, False, False, False, True, False),
        ("gemini-2.5-flash-preview-tts", False, True, False, True, False, False, False),
        ("gemini-2.5-pro-preview-tts", False, True, False, True, False, False, False),
        ("gemini-2.5-flash-image", False, True, True, False, False, False, False),
        ("gemini-3-pro-preview", True, False, False, False, False, True, False),
        ("gemini-3.1-pro-preview", True, False, False, False, False, True, False),
        ("gemini-3-flash-preview", True, False, False, False, False, True, False),
        ("gemini-3-pro-image-preview", True, False, True, False, False, True, False),
        ("imagen-4.0-generate-001", False, False, False, False, True, False, False),
        ("models/gemini-2.5-flash", False, True, False, False, False, True, True),
    ],
)
def test_predicates(
    model: str, gemini3: bool, gemini25: bool, image: bool, tts: bool, imagen: bool,
    thinks: bool, can_disable: bool,
) -> None:
    assert is_gemini3(model) is gemini3
    assert is_gemini25(model) is gemini25
    assert is_image_model(model) is image
    assert is_tts_model(model) is tts
    assert is_imagen(model) is imagen
    assert supports_thinking(model) is thinks
    assert can_disable_thinking(model) is can_disable


@pytest.mark.parametrize(
    ("model", "effort", "expected"),
    [
        # Gemini 2.5: Google's table, budgets
        ("gemini-2.5-flash", "low", {"thinkingBudget": 1024}),
        ("gemini-2.5-flash", "medium", {"thinkingBudget": 8192}),
        ("gemini-2.5-flash", "high", {"thinkingBudget": 24576}),
        ("gemini-2.5-flash", "minimal", {"thinkingBudget": 1024}),
        ("gemini-2.5-flash", "none", {"thinkingBudget": 0}),
        ("gemini-2.5-pro", "high", {"thinkingBudget": 24576}),
        ("gemini-2.5-pro", "xhigh", {"thinkingBudget": 24576}),
        # Gemini 3: levels, rounded up to one the model takes
        ("gemini-3-pro-preview", "minimal", {"thinkingLevel": "LOW"}),
        ("gemini-3-pro-preview", "low", {"thinkingLevel": "LOW"}),
        ("gemini-3-pro-preview", "medium", {"thinkingLevel": "HIGH"}),
        ("gemini-3-pro-preview", "high", {"thinkingLevel": "HIGH"}),
        ("gemini-3.1-pro-preview", "minimal", {"thinkingLevel": "LOW"}),
        ("gemini-3.1-pro-preview", "medium", {"thinkingLevel": "MEDIUM"}),
        ("gemini-3-flash-preview", "minimal", {"thinkingLevel": "MINIMAL"}),
        ("gemini-3-flash-preview", "medium", {"thinkingLevel": "MEDIUM"}),
        ("gemini-3-flash-preview", "max", {"thinkingLevel": "HIGH"}),
        # A model that does not think has nothing to tune
        ("gemini-2.0-flash", "high", {}),
        ("gemini-2.0-flash", "none", {}),
    ],
)
def test_thinking_for_effort(model: str, effort: str, expected: dict[str, object]) -> None:
    assert thinking_for_effort(model, effort) == expected


@pytest.mark.parametrize(
    ("model", "effort"),
    [
        pytest.param("gemini-2.5-pro", "none", id="2.5-pro-cannot-disable"),
        pytest.param("gemini-3-pro-preview", "none", id="gemini3-cannot-disable"),
        pytest.param("gemini-3-flash-preview", "none", id="gemini3-flash-cannot-disable"),
        pytest.param("gemini-2.5-flash", "extreme", id="unknown-value"),
    ],
)
def test_thinking_for_effort_refuses(model: str, effort: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        thinking_for_effort(model, effort)
    assert caught.value.param == "reasoning_effort"


# Google's documented thinkingBudget ranges (ai.google.dev/gemini-api/docs/thinking#set-budget).
@pytest.mark.parametrize(
    ("name", "budget"),
    [
        ("gemini-2.5-pro-thinking-128", 128),
        ("gemini-2.5-pro-thinking-32768", 32768),
        ("gemini-2.5-flash-thinking-1", 1),
        ("gemini-2.5-flash-thinking-24576", 24576),
        ("gemini-2.5-flash-lite-thinking-512", 512),
        ("gemini-2.5-flash-lite-preview-06-17-thinking-24576", 24576),
        ("gemini-3-pro-preview-thinking-50000", 50000),  # levels, no documented budget range
    ],
)
def test_thinking_budget_suffix_within_range(name: str, budget: int) -> None:
    assert parse_model(name).thinking_budget == budget


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gemini-2.5-pro-thinking-127", "use 128 to 32768, -1 (dynamic)"),
        ("gemini-2.5-pro-thinking-32769", "use 128 to 32768, -1 (dynamic)"),
        ("gemini-2.5-flash-thinking-24577", "use 1 to 24576, -1 (dynamic), 0 (off)"),
        ("gemini-2.5-flash-lite-thinking-511", "use 512 to 24576, -1 (dynamic), 0 (off)"),
    ],
)
def test_thinking_budget_suffix_out_of_range_is_a_clear_400(name: str, expected: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_model(name)
    assert caught.value.param == "model"
    assert expected in caught.value.message
