"""The official `openai` Python client against the real tts-host + sine plugin: every format
decoded, streaming responses, SSE, and how errors map onto the client's exceptions."""

import base64
import io
import json

import numpy as np
import openai
import pytest
import subprocess

import soundfile as sf

RATE = 24_000
TEXT = "aaaa aaaa"


def sine_samples(text: str, speed: float = 1.0, rate: int = RATE) -> int:
    """What the sine backend renders: 60 ms per character, 40 ms per space, 200 ms per stop."""
    total = 0
    for c in text:
        if c.isspace():
            seconds = 0.04
        elif c in ".!?;:。":
            seconds = 0.2
        elif c in ",、":
            seconds = 0.1
        else:
            seconds = 0.06
        total += round(np.float32(seconds) / np.float32(speed) * np.float32(rate))
    return total


def client(server, **kwargs) -> openai.OpenAI:
    kwargs.setdefault("api_key", "not-needed")
    return openai.OpenAI(base_url=server.base_url, **kwargs)


def decode(fmt: str, data: bytes) -> tuple[np.ndarray, int]:
    if fmt == "pcm":
        assert len(data) % 2 == 0, "pcm must be whole 16-bit samples"
        return np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768.0, RATE
    if fmt == "flac":
        # A streamed FLAC cannot know its length when STREAMINFO goes out, so it says "unknown"
        # (0), as the FLAC format allows. libsndfile (under soundfile) cannot read such a stream
        # (it reports 2^63 frames and its seeks fail), so decode with the reference decoder,
        # which the setup script installs.
        raw = subprocess.run(
            ["flac", "--decode", "--silent", "--stdout", "--force-raw-format", "--endian=little", "--sign=signed", "-"],
            input=data,
            capture_output=True,
            check=True,
        ).stdout
        rate = int.from_bytes(data[18:21], "big") >> 4  # STREAMINFO's 20-bit sample rate
        return np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0, rate
    samples, rate = sf.read(io.BytesIO(data), dtype="float64", always_2d=True)
    assert samples.shape[1] == 1, f"{fmt}: {samples.shape[1]} channels"
    return samples[:, 0], rate


# (format, lossless): lossless formats must have exactly the backend's sample count.
FORMATS = [("mp3", False), ("opus", False), ("flac", True), ("wav", True), ("pcm", True), ("aiff", True)]


@pytest.mark.parametrize("fmt,lossless", FORMATS)
def test_speech_create_every_format_decodes(sine_server, fmt, lossless):
    resp = client(sine_server).audio.speech.create(
        model="tts-1", voice="sine_bass", input=TEXT, response_format=fmt)
    data = resp.content
    assert data, f"{fmt}: empty body"
    samples, rate = decode(fmt, data)
    expected = sine_samples(TEXT)
    if lossless:
        assert rate == RATE
        assert len(samples) == expected, f"{fmt}: {len(samples)} samples, want {expected}"
    else:
        seconds = len(samples) / rate
        assert abs(seconds - expected / RATE) < 0.1, f"{fmt}: {seconds:.3f} s, want {expected / RATE:.3f}"
    assert np.all(np.isfinite(samples))
    rms = float(np.sqrt(np.mean(samples ** 2)))
    # 8 of 9 characters are a 0.3-peak tone (RMS 0.212) with 5 ms ramps: about 0.19.
    assert 0.15 < rms < 0.23, f"{fmt}: RMS {rms:.3f}"


@pytest.mark.parametrize("fmt", ["pcm", "wav", "flac", "mp3"])
def test_with_streaming_response_gives_the_same_bytes(sine_server, fmt):
    c = client(sine_server)
    whole = c.audio.speech.create(model="tts-1", voice="sine_alto", input="Hello there.", response_format=fmt)
    with c.audio.speech.with_streaming_response.create(
            model="tts-1", voice="sine_alto", input="Hello there.", response_format=fmt) as resp:
        assert resp.status_code == 200
        pieces = list(resp.iter_bytes())
    assert b"".join(pieces) == whole.content
    if fmt == "pcm":
        assert len(whole.content) == 2 * sine_samples("Hello there.")


def test_sse_stream_format(sine_server):
    c = client(sine_server)
    plain = c.audio.speech.create(model="tts-1", voice="sine_alto", input="stream me", response_format="pcm")
    with c.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice="sine_alto", input="stream me", response_format="pcm",
            stream_format="sse") as resp:
        assert resp.headers["content-type"] == "text/event-stream"
        raw = b"".join(resp.iter_bytes()).decode()
    events = [json.loads(line[len("data: "):]) for line in raw.splitlines() if line.startswith("data: ")]
    deltas, done = events[:-1], events[-1]
    assert deltas and all(e["type"] == "speech.audio.delta" for e in deltas)
    assert b"".join(base64.b64decode(e["audio"]) for e in deltas) == plain.content
    assert done["type"] == "speech.audio.done"
    usage = done["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_extra_body_and_openai_voice_names(sine_server):
    c = client(sine_server)
    # OpenAI's built-in names map to the default voice; unknown extra keys are ignored.
    a = c.audio.speech.create(model="tts-1", voice="alloy", input="abc", response_format="pcm",
                              extra_body={"lang_code": "a", "something_new": True})
    b = c.audio.speech.create(model="tts-1", voice="sine_alto", input="abc", response_format="pcm")
    assert a.content == b.content
    fast = c.audio.speech.create(model="tts-1", voice="sine_alto", input="abc", response_format="pcm", speed=2.0)
    assert len(fast.content) == 2 * sine_samples("abc", 2.0)


def test_unknown_voice_is_bad_request(sine_server):
    with pytest.raises(openai.BadRequestError) as info:
        client(sine_server).audio.speech.create(model="tts-1", voice="nobody", input="hi")
    e = info.value
    assert e.status_code == 400
    assert e.param == "voice"
    assert e.type == "invalid_request_error"
    assert "nobody" in e.message


def test_bad_speed_and_aac_are_bad_requests(sine_server):
    c = client(sine_server)
    with pytest.raises(openai.BadRequestError) as info:
        c.audio.speech.create(model="tts-1", voice="sine_alto", input="hi", speed=9.0)
    assert info.value.param == "speed"
    with pytest.raises(openai.BadRequestError) as info:
        c.audio.speech.create(model="tts-1", voice="sine_alto", input="hi", response_format="aac")
    assert info.value.param == "response_format"
    assert "aac" in info.value.message.lower()


def test_backend_panic_is_internal_server_error_and_not_retried(faulty_server):
    before = faulty_server.count("speech request")
    c = client(faulty_server, max_retries=2)
    with pytest.raises(openai.InternalServerError) as info:
        c.audio.speech.create(model="tts-1", voice="faulty", input="abc", response_format="pcm",
                              extra_body={"fault": "panic"})
    assert info.value.status_code == 500
    assert info.value.response.headers.get("x-should-retry") == "false"
    assert faulty_server.count("speech request") == before + 1, "the client retried"
    # The server keeps serving.
    ok = c.audio.speech.create(model="tts-1", voice="faulty", input="abc", response_format="pcm")
    assert len(ok.content) == 2 * 3 * 1200


def test_api_key(keyed_server):
    with pytest.raises(openai.AuthenticationError) as info:
        client(keyed_server, api_key="wrong").audio.speech.create(model="tts-1", voice="sine_alto", input="hi")
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"
    ok = client(keyed_server, api_key="sesame").audio.speech.create(
        model="tts-1", voice="sine_alto", input="hi", response_format="pcm")
    assert len(ok.content) == 2 * sine_samples("hi")
    models = client(keyed_server, api_key="sesame").models.list()
    assert "tts-1" in [m.id for m in models.data]
