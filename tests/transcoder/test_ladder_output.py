"""The ladder from a generated source through the real transcoder (real ffmpeg, real HTTP PUTs)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.transcoder.contract import assert_session_contract, final_playlists
from tests.transcoder.media import (
    AAC_FRAME_SAMPLES,
    SAMPLE_RATE,
    aac_priming_samples,
    decode_pcm,
    make_music_like,
    probe,
    samples_of,
)
from tests.transcoder.receiver import Receiver
from transcoder.ladder import DEFAULT_LADDER
from transcoder.runner import run_transcoder
from transcoder.settings import TranscodeSettings
from transcoder.source import UrlSource

SECONDS = 6.0


def test_default_ladder_decodes_with_the_right_format_bitrate_and_duration(
    receiver: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="transcoder")
    source = make_music_like(tmp_path / "in.wav", seconds=SECONDS, rate=44_100)  # resampled to 48 kHz
    settings = TranscodeSettings(
        room="r1", source=UrlSource(url=str(source)), origin_url=receiver.url, token="tok", segment_seconds=1.0
    )
    assert run_transcoder(settings) == 0  # the input ended: eos

    sessions = receiver.sessions()
    assert len(sessions) == 1
    session = sessions[0]
    names = [r.name for r in DEFAULT_LADDER]
    segments = assert_session_contract(receiver, session, renditions=names, end_reason="eos", segment_seconds=1.0)
    tails = final_playlists(caplog.text, session)

    input_samples = round(samples_of(source) * SAMPLE_RATE / 44_100)
    priming = aac_priming_samples(tmp_path)
    assert priming == AAC_FRAME_SAMPLES  # what ffmpeg's aac encoder declares; measured, not assumed
    for rendition in DEFAULT_LADDER:
        media = tmp_path / f"{rendition.name}.mp4"
        media.write_bytes(receiver.media(session, rendition.name))
        p = probe(media)
        assert (p.codec, p.channels, p.sample_rate) == ("aac", rendition.channels, 48_000)
        assert p.time_base_den == SAMPLE_RATE
        # Σ sample durations includes the encoder's priming (no edit list in fMP4 segments): take it out.
        content = p.duration_ts - priming
        assert abs(content - input_samples) <= AAC_FRAME_SAMPLES, (rendition.name, content, input_samples)
        payload = sum(len(s.body) for s in segments[rendition.name])
        bitrate = payload * 8 / (content / SAMPLE_RATE)
        assert abs(bitrate - rendition.bitrate_bps) <= 0.15 * rendition.bitrate_bps, (rendition.name, bitrate)
        # every byte decodes, and into at least the content (decoders also output priming and padding)
        assert len(decode_pcm(media)) // 2 >= content
        # ffmpeg's own final playlist (local) is closed and ends with the last segment that arrived
        assert tails[rendition.name] == f"{segments[rendition.name][-1].name}, closed", tails


def test_custom_ladder_and_segment_length(receiver: Receiver, tmp_path: Path) -> None:
    from transcoder.ladder import parse_ladder

    source = make_music_like(tmp_path / "in.wav", seconds=4.0, rate=48_000, channels=1)
    settings = TranscodeSettings(
        room="r1",
        source=UrlSource(url=str(source)),
        origin_url=receiver.url,
        token="tok",
        ladder=parse_ladder("lo:32k:1,st:96k:2"),
        segment_seconds=2.0,
    )
    assert run_transcoder(settings) == 0
    session = receiver.sessions()[0]
    segments = assert_session_contract(receiver, session, renditions=["lo", "st"], end_reason="eos",
                                       segment_seconds=2.0)  # fmt: skip
    assert 2 <= len(segments["lo"]) <= 3  # 4 s in 2 s segments (+ the priming tail)
    media = tmp_path / "st.mp4"
    media.write_bytes(receiver.media(session, "st"))
    assert probe(media).channels == 2
