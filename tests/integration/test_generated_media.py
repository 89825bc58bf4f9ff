"""Generated images and speech end to end: real gateway process, real simulator, real bytes.

The simulator's own synthesiser (``simulator/synth_media.py``) is the oracle: the PNG a client
gets must be the very PNG the simulator made for the prompt, and the WAV must hold exactly its
PCM at 24 kHz.
"""

from __future__ import annotations

import base64
import io
import re
import time
import wave
from typing import Any

import pytest
from PIL import Image

from gemini_gateway.simulator.synth_media import pcm_tone, png_for
from tests.integration.helpers import assert_openai_error, get, post
from tests.unit.openai_schema import assert_valid
from tests.unit.test_translate_images import assert_valid_full

KITTEN = {
    "messages": [{"role": "user", "content": "Draw a kitten"}],
    "model": "gemini-2.0-flash-exp-image-generation",
    "stream": True,
}
LINK = re.compile(r"!\[image\]\((?P<url>[^)\s]+)\)")
AUDIO_LINK = re.compile(r"\[audio\]\((?P<url>[^)\s]+)\)")


def _auth(gateway: Any) -> dict[str, str]:
    return {"Authorization": gateway.license}


def _pixels(data: bytes) -> tuple[str, tuple[int, int], bytes]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.mode, image.size, image.tobytes()


def _same_image(data: bytes, prompt: str) -> None:
    assert data == png_for(prompt)
    assert _pixels(data) == _pixels(png_for(prompt))


def _wav_frames(data: bytes) -> tuple[int, int, int, bytes]:
    with wave.open(io.BytesIO(data)) as wav:
        frames = wav.readframes(10**9)
        return wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), frames


def _spoken_text(sent: dict[str, Any]) -> str:
    return " ".join(p["text"] for p in sent["body"]["contents"][-1]["parts"] if "text" in p)


# --- images on the chat endpoint --------------------------------------------------------------


def test_product_page_image_generation_verbatim(gateway: Any, sim: Any) -> None:
    resp = post(gateway.base_url + "/chat/completions", KITTEN, _auth(gateway))
    assert resp.status == 200, resp.body
    assert resp.sse_events()[-1] == "[DONE]"
    chunks = resp.chunks()
    for chunk in chunks:
        assert_valid(chunk, "CreateChatCompletionStreamResponse")
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    images = [i for c in chunks for i in c["choices"][0]["delta"].get("images") or ()]
    links = LINK.findall(content)
    assert len(links) == 1 and len(images) == 1
    assert images[0]["image_url"]["url"] == links[0]
    assert links[0].startswith(gateway.url + "/gemini/v1/files/")

    sent = sim.requests()[-1]
    assert "gemini-2.0-flash-exp-image-generation:streamGenerateContent" in sent["path"]
    assert sent["body"]["generationConfig"]["responseModalities"] == ["TEXT", "IMAGE"]

    served = get(links[0])  # no license: the unguessable id is the credential
    assert served.status == 200
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "max-age=" in served.headers["cache-control"]
    _same_image(served.body, "Draw a kitten")


@pytest.mark.parametrize(
    "model", ["gemini-2.0-flash-preview-image-generation", "gemini-2.5-flash-image",
              "gemini-3-pro-image-preview"]
)
def test_image_models_non_streamed_with_image_config(gateway: Any, sim: Any, model: str) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "A red bicycle"}],
            "extra_body": {"google": {"image_config": {"aspect_ratio": "16:9"}}}}
    resp = post(gateway.base_url + "/chat/completions", body, _auth(gateway))
    assert resp.status == 200, resp.body
    chat = resp.json()
    assert_valid(chat, "CreateChatCompletionResponse")
    message = chat["choices"][0]["message"]
    (url,) = LINK.findall(message["content"])
    assert message["images"] == [{"type": "image_url", "image_url": {"url": url}}]
    config = sim.requests()[-1]["body"]["generationConfig"]
    assert config["responseModalities"] == ["TEXT", "IMAGE"]
    assert config["imageConfig"] == {"aspectRatio": "16:9"}
    _same_image(get(url).body, "A red bicycle")


def test_data_urls_when_the_operator_chooses_them(start_gateway: Any, sim: Any) -> None:
    gw = start_gateway(generated_media="data")
    body = {**KITTEN, "stream": False}
    resp = post(gw.base_url + "/chat/completions", body, _auth(gw))
    assert resp.status == 200, resp.body
    message = resp.json()["choices"][0]["message"]
    (url,) = LINK.findall(message["content"])
    assert url.startswith("data:image/png;base64,")
    _same_image(base64.b64decode(url.split(",", 1)[1]), "Draw a kitten")
    assert not (gw.data_dir / "files").exists() or not any((gw.data_dir / "files").iterdir())


@pytest.mark.parametrize("mode", ["link", "data-url"])
def test_edit_turn_sends_the_earlier_image_back(gateway: Any, sim: Any, mode: str) -> None:
    first = post(gateway.base_url + "/chat/completions", {**KITTEN, "stream": False},
                 _auth(gateway)).json()
    earlier = first["choices"][0]["message"]["content"]
    if mode == "data-url":
        url = LINK.findall(earlier)[0]
        data = base64.b64encode(get(url).body).decode()
        earlier = earlier.replace(url, f"data:image/png;base64,{data}")
    edit = {
        "model": "gemini-2.0-flash-exp-image-generation",
        "messages": [
            {"role": "user", "content": "Draw a kitten"},
            {"role": "assistant", "content": earlier},
            {"role": "user", "content": "Make it blue"},
        ],
    }
    resp = post(gateway.base_url + "/chat/completions", edit, _auth(gateway))
    assert resp.status == 200, resp.body
    _same_image(get(LINK.findall(resp.json()["choices"][0]["message"]["content"])[0]).body,
                "Make it blue")
    contents = sim.requests()[-1]["body"]["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    blobs = [p["inlineData"] for p in contents[1]["parts"] if "inlineData" in p]
    assert len(blobs) == 1 and blobs[0]["mimeType"] == "image/png"
    assert base64.b64decode(blobs[0]["data"]) == png_for("Draw a kitten")
    assert not any("/gemini/v1/files/" in p.get("text", "") for p in contents[1]["parts"])


def test_user_sends_our_image_link_to_edit(gateway: Any, sim: Any) -> None:
    first = post(gateway.base_url + "/chat/completions", {**KITTEN, "stream": False},
                 _auth(gateway)).json()
    url = LINK.findall(first["choices"][0]["message"]["content"])[0]
    edit = {"model": "gemini-2.5-flash-image", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Add a hat"}, {"type": "image_url", "image_url": {"url": url}}]}]}
    resp = post(gateway.base_url + "/chat/completions", edit, _auth(gateway))
    assert resp.status == 200, resp.body
    parts = sim.requests()[-1]["body"]["contents"][0]["parts"]
    assert base64.b64decode(parts[1]["inlineData"]["data"]) == png_for("Draw a kitten")


# --- the files route --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "file_id", ["A" * 32, "..%2F..%2Fgateway.db", "gateway.db", "%2e%2e", "a" * 200],
)
def test_unknown_or_malformed_file_ids_are_404(gateway: Any, file_id: str) -> None:
    resp = get(f"{gateway.base_url}/files/{file_id}")
    assert_openai_error(resp, 404, "not_found_error")


def test_expired_link_is_404(start_gateway: Any, sim: Any) -> None:
    gw = start_gateway(generated_media_ttl="0.5")
    resp = post(gw.base_url + "/chat/completions", {**KITTEN, "stream": False}, _auth(gw))
    url = LINK.findall(resp.json()["choices"][0]["message"]["content"])[0]
    assert get(url).status == 200
    time.sleep(0.7)
    assert_openai_error(get(url), 404)


# --- speech on the chat endpoint --------------------------------------------------------------


@pytest.mark.parametrize("model", ["gemini-2.5-flash-preview-tts", "gemini-2.5-pro-preview-tts"])
def test_tts_model_on_chat_returns_a_real_wav(gateway: Any, sim: Any, model: str) -> None:
    body = {"model": model, "audio": {"voice": "Kore", "format": "wav"},
            "messages": [{"role": "user", "content": "Say hello to everyone in the room"}]}
    resp = post(gateway.base_url + "/chat/completions", body, _auth(gateway))
    assert resp.status == 200, resp.body
    chat = resp.json()
    assert_valid(chat, "CreateChatCompletionResponse")
    message = chat["choices"][0]["message"]
    audio = message["audio"]
    assert audio["id"] and audio["expires_at"] > chat["created"]
    wav = base64.b64decode(audio["data"])
    sent = sim.requests()[-1]
    config = sent["body"]["generationConfig"]
    assert config["responseModalities"] == ["AUDIO"]
    assert config["speechConfig"] == {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}}
    expected = pcm_tone(len(_spoken_text(sent).split()))
    assert _wav_frames(wav) == (24000, 1, 2, expected)
    (link,) = AUDIO_LINK.findall(message["content"])
    served = get(link)
    assert served.headers["content-type"] == "audio/wav" and served.body == wav


def test_tts_model_on_chat_streamed(gateway: Any, sim: Any) -> None:
    body = {"model": "gemini-2.5-flash-preview-tts", "stream": True, "audio": {"voice": "alloy"},
            "messages": [{"role": "user", "content": "Read this aloud please"}]}
    resp = post(gateway.base_url + "/chat/completions", body, _auth(gateway))
    assert resp.status == 200, resp.body
    chunks = resp.chunks()
    audio = [c["choices"][0]["delta"]["audio"] for c in chunks
             if c["choices"] and c["choices"][0]["delta"].get("audio")]
    assert len(audio) == 1
    sent = sim.requests()[-1]
    voice = sent["body"]["generationConfig"]["speechConfig"]["voiceConfig"]
    assert voice == {"prebuiltVoiceConfig": {"voiceName": "Zephyr"}}  # OpenAI alloy
    rate, _, _, frames = _wav_frames(base64.b64decode(audio[0]["data"]))
    assert rate == 24000 and frames == pcm_tone(len(_spoken_text(sent).split()))


@pytest.mark.parametrize("stream", [False, True])
def test_tts_model_on_chat_in_flac(gateway: Any, sim: Any, stream: bool) -> None:
    soundfile = pytest.importorskip("soundfile")
    body = {"model": "gemini-2.5-flash-preview-tts", "stream": stream,
            "audio": {"voice": "Kore", "format": "flac"},
            "messages": [{"role": "user", "content": "Say hello to everyone in the room"}]}
    resp = post(gateway.base_url + "/chat/completions", body, _auth(gateway))
    assert resp.status == 200, resp.body
    if stream:
        (audio,) = [c["choices"][0]["delta"]["audio"] for c in resp.chunks()
                    if c["choices"] and c["choices"][0]["delta"].get("audio")]
        content = ""
    else:
        message = resp.json()["choices"][0]["message"]
        audio, content = message["audio"], message["content"]
    flac = base64.b64decode(audio["data"])
    samples, rate = soundfile.read(io.BytesIO(flac), dtype="int16")
    assert rate == 24000
    assert samples.tobytes() == pcm_tone(len(_spoken_text(sim.requests()[-1]).split()))
    if not stream:
        (link,) = AUDIO_LINK.findall(content)
        served = get(link)
        assert served.headers["content-type"] == "audio/flac" and served.body == flac


def test_tts_model_on_chat_streamed_as_pcm16_is_still_a_wav(gateway: Any, sim: Any) -> None:
    """OpenAI requires pcm16 when streaming audio; the chat endpoint answers with its WAV."""
    body = {"model": "gemini-2.5-flash-preview-tts", "stream": True,
            "audio": {"voice": "alloy", "format": "pcm16"},
            "messages": [{"role": "user", "content": "Read this aloud please"}]}
    resp = post(gateway.base_url + "/chat/completions", body, _auth(gateway))
    assert resp.status == 200, resp.body
    (audio,) = [c["choices"][0]["delta"]["audio"] for c in resp.chunks()
                if c["choices"] and c["choices"][0]["delta"].get("audio")]
    rate, _, _, frames = _wav_frames(base64.b64decode(audio["data"]))
    assert rate == 24000 and frames == pcm_tone(len(_spoken_text(sim.requests()[-1]).split()))


def test_chat_audio_format_without_an_encoder_is_400(gateway: Any) -> None:
    body = {"model": "gemini-2.5-flash-preview-tts", "audio": {"voice": "Kore", "format": "aac"},
            "messages": [{"role": "user", "content": "Hi"}]}
    resp = post(gateway.base_url + "/chat/completions", body, _auth(gateway))
    assert assert_openai_error(resp, 400)["param"] == "audio.format"


# --- POST /images/generations -----------------------------------------------------------------


def test_images_generations_gemini_b64_with_sdk(gateway: Any, sim: Any) -> None:
    result = gateway.client().images.generate(
        model="gemini-2.5-flash-image", prompt="A cute baby sea otter", n=2, size="1792x1024",
        response_format="b64_json",
    )
    assert len(result.data) == 2
    for image in result.data:
        _same_image(base64.b64decode(image.b64_json), "A cute baby sea otter")
    assert result.usage is not None and result.usage.output_tokens > 0
    sent = [r for r in sim.requests() if r.get("action") == "generateContent"]
    assert len(sent) == 2
    for request in sent:
        assert "gemini-2.5-flash-image:generateContent" in request["path"]
        config = request["body"]["generationConfig"]
        assert config == {"responseModalities": ["TEXT", "IMAGE"],
                          "imageConfig": {"aspectRatio": "16:9"}}


def test_images_generations_urls_raw(gateway: Any, sim: Any) -> None:
    body = {"model": "gemini-2.0-flash-preview-image-generation", "prompt": "A lighthouse",
            "size": "1024x1024"}
    resp = post(gateway.base_url + "/images/generations", body, _auth(gateway))
    assert resp.status == 200, resp.body
    result = resp.json()
    assert_valid_full(result, "ImagesResponse")
    (item,) = result["data"]
    assert item["url"].startswith(gateway.url + "/gemini/v1/files/")
    served = get(item["url"])
    assert served.headers["content-type"] == "image/png"
    _same_image(served.body, "A lighthouse")


def test_images_generations_imagen_predict(gateway: Any, sim: Any) -> None:
    body = {"model": "imagen-4.0-generate-001", "prompt": "Robot with a red skateboard", "n": 5,
            "size": "1024x1792", "response_format": "b64_json"}
    resp = post(gateway.url + "/v1/images/generations", body, _auth(gateway))
    assert resp.status == 200, resp.body
    result = resp.json()
    assert_valid_full(result, "ImagesResponse")
    sent = [r for r in sim.requests() if r.get("action") == "predict"]
    assert sorted(r["body"]["parameters"]["sampleCount"] for r in sent) == [1, 4]
    for request in sent:
        assert request["path"].endswith("/models/imagen-4.0-generate-001:predict")
        assert request["body"]["instances"] == [{"prompt": "Robot with a red skateboard"}]
        assert request["body"]["parameters"]["aspectRatio"] == "9:16"
    got = sorted(base64.b64decode(i["b64_json"]) for i in result["data"])
    # The simulator draws sample k of a call from "prompt#k": 4 from one call, 1 from the other.
    made = [png_for(f"Robot with a red skateboard#{k}") for k in (0, 1, 2, 3, 0)]
    assert got == sorted(made)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param({"model": "gemini-2.5-flash-image", "prompt": "x", "size": "300x1000"},
                     "size", id="size-far-from-a-ratio"),
        pytest.param({"model": "gemini-2.5-flash", "prompt": "x"}, "model", id="text-model"),
        pytest.param({"model": "gemini-2.5-flash-image"}, "prompt", id="no-prompt"),
        pytest.param({"model": "gemini-2.5-flash-image", "prompt": "x", "n": 11}, "n", id="n"),
    ],
)
def test_images_generations_bad_requests(gateway: Any, body: dict[str, Any], param: str) -> None:
    resp = post(gateway.base_url + "/images/generations", body, _auth(gateway))
    assert assert_openai_error(resp, 400, "invalid_request_error")["param"] == param


@pytest.mark.parametrize("model", ["gemini-2.5-flash-image", "imagen-4.0-generate-001"])
def test_images_generations_blocked_prompt(gateway: Any, sim: Any, model: str) -> None:
    body = {"model": model, "prompt": "BLOCKME please"}
    resp = post(gateway.base_url + "/images/generations", body, _auth(gateway))
    assert assert_openai_error(resp, 400)["code"] == "content_policy_violation"


def test_images_generations_needs_a_license(gateway: Any) -> None:
    body = {"model": "gemini-2.5-flash-image", "prompt": "x"}
    assert_openai_error(post(gateway.base_url + "/images/generations", body), 401)


# --- POST /audio/speech -----------------------------------------------------------------------


def test_speech_wav_with_sdk_streaming(gateway: Any, sim: Any) -> None:
    client = gateway.client()
    with client.audio.speech.with_streaming_response.create(
        model="gemini-2.5-flash-preview-tts", voice="alloy", response_format="wav",
        input="The quick brown fox jumped over the lazy dog.",
    ) as response:
        assert response.headers["content-type"] == "audio/wav"
        assert response.headers.get("transfer-encoding") == "chunked"
        data = response.read()
    sent = sim.requests()[-1]
    assert "gemini-2.5-flash-preview-tts:streamGenerateContent" in sent["path"]
    config = sent["body"]["generationConfig"]
    assert config["responseModalities"] == ["AUDIO"]
    assert config["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"] == "Zephyr"
    assert _spoken_text(sent) == "The quick brown fox jumped over the lazy dog."
    assert _wav_frames(data) == (24000, 1, 2, pcm_tone(9))
    assert len(pcm_tone(9)) // 2 == 9 * 2400  # a tenth of a second per word


def test_speech_pcm_is_raw_samples(gateway: Any, sim: Any) -> None:
    body = {"model": "gemini-2.5-pro-preview-tts", "voice": "Puck", "input": "One two three",
            "response_format": "pcm", "instructions": "Say cheerfully", "speed": 1.25}
    resp = post(gateway.base_url + "/audio/speech", body, _auth(gateway))
    assert resp.status == 200, resp.body
    assert resp.headers["content-type"].startswith("audio/pcm")
    sent = sim.requests()[-1]
    spoken = _spoken_text(sent)
    assert spoken == ("Say cheerfully. Speak fast (about 1.25× normal speed): One two three")
    assert resp.body == pcm_tone(len(spoken.split()))


def test_speech_sse_events(gateway: Any, sim: Any) -> None:
    body = {"model": "gemini-2.5-flash-preview-tts", "voice": "Kore", "input": "Hello there",
            "response_format": "wav", "stream_format": "sse"}
    resp = post(gateway.base_url + "/audio/speech", body, _auth(gateway))
    assert resp.status == 200, resp.body
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = resp.chunks()
    assert [e["type"] for e in events][-1] == "speech.audio.done"
    assert events[-1]["usage"]["total_tokens"] > 0
    audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert _wav_frames(audio) == (24000, 1, 2, pcm_tone(2))


def test_speech_mp3_or_default(gateway: Any, sim: Any) -> None:
    from gemini_gateway.translate.audio_encode import available_formats

    body = {"model": "gemini-2.5-flash-preview-tts", "voice": "Kore", "input": "Hello there"}
    resp = post(gateway.base_url + "/audio/speech", body, _auth(gateway))
    assert resp.status == 200, resp.body
    if "mp3" in available_formats():
        assert resp.headers["content-type"] == "audio/mpeg"
        assert resp.body[:3] == b"ID3" or (resp.body[0] == 0xFF and resp.body[1] & 0xE0 == 0xE0)
        assert len(resp.body) > 1000
    else:
        assert resp.headers["content-type"] == "audio/wav"
        assert _wav_frames(resp.body)[3] == pcm_tone(2)


def test_speech_flac_is_the_simulators_samples_losslessly(gateway: Any, sim: Any) -> None:
    soundfile = pytest.importorskip("soundfile")
    body = {"model": "gemini-2.5-flash-preview-tts", "voice": "Kore", "input": "Hello there",
            "response_format": "flac"}
    resp = post(gateway.base_url + "/audio/speech", body, _auth(gateway))
    assert resp.status == 200, resp.body
    assert resp.headers["content-type"] == "audio/flac"
    samples, rate = soundfile.read(io.BytesIO(resp.body), dtype="int16")
    assert rate == 24000
    assert samples.tobytes() == pcm_tone(2)


def test_speech_opus_is_ogg_opus_of_the_same_length(gateway: Any, sim: Any) -> None:
    soundfile = pytest.importorskip("soundfile")
    body = {"model": "gemini-2.5-flash-preview-tts", "voice": "Kore", "input": "Hello there",
            "response_format": "opus", "stream_format": "sse"}
    resp = post(gateway.base_url + "/audio/speech", body, _auth(gateway))
    assert resp.status == 200, resp.body
    events = resp.chunks()
    assert events[-1]["type"] == "speech.audio.done"
    audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert audio[:4] == b"OggS" and b"OpusHead" in audio[:200]
    samples, rate = soundfile.read(io.BytesIO(audio), dtype="int16")
    assert rate == 24000
    assert abs(len(samples) * 2 - len(pcm_tone(2))) <= 24000 * 2 // 50  # within 20 ms


@pytest.mark.parametrize("fmt", ["aac"])
def test_speech_format_without_an_encoder_is_400(gateway: Any, fmt: str) -> None:
    body = {"model": "gemini-2.5-flash-preview-tts", "voice": "Kore", "input": "Hi",
            "response_format": fmt}
    resp = post(gateway.base_url + "/audio/speech", body, _auth(gateway))
    err = assert_openai_error(resp, 400, "invalid_request_error")
    assert err["param"] == "response_format"
    assert "wav" in err["message"] and "pcm" in err["message"]


def test_speech_blocked_input_is_an_http_error(gateway: Any, sim: Any) -> None:
    body = {"model": "gemini-2.5-flash-preview-tts", "voice": "Kore", "input": "BLOCKME now",
            "response_format": "wav"}
    resp = post(gateway.base_url + "/audio/speech", body, _auth(gateway))
    assert assert_openai_error(resp, 400)["code"] == "content_policy_violation"


def test_speech_on_a_text_model_is_400(gateway: Any) -> None:
    body = {"model": "gemini-2.5-flash", "voice": "Kore", "input": "Hi"}
    resp = post(gateway.base_url + "/audio/speech", body, _auth(gateway))
    assert assert_openai_error(resp, 400)["param"] == "model"
