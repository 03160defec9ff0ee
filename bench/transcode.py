"""Transcoder overhead (not a test): CPU per audio-minute of the default ladder, transcoder vs bare ffmpeg.

Both cut the same AAC ladder (a48/a64/a128, fMP4 segments of the product's default length) from the same
generated music-like source (pink noise + tone, 44.1 kHz stereo, so resampling is included); the transcoder
PUTs it to a local ingest receiver that runs in its own process (tests/transcoder/receiver.py), so its CPU is
not counted.

* bare ffmpeg: the command transcoder.command.build_argv produces, run directly with `-loglevel error`
  (what an operator would run by hand; it writes to a local directory and sends nothing);
  CPU = getrusage(RUSAGE_CHILDREN) delta.
* transcoder: run_transcoder() in this process (supervisor + stderr reader threads, ingest calls, the uploads
  of every init and segment, ffmpeg at `-loglevel verbose` parsed line by line); CPU = RUSAGE_SELF delta (this
  process is otherwise idle) + RUSAGE_CHILDREN delta (ffmpeg).

Two modes: `unpaced` (the whole source as fast as possible: throughput) and `paced` (-re, real time: what a
live room costs, including the supervisor's polling and status work). Runs alternate; medians are reported.
Writes bench/results/transcode.json and .png.

    .venv/bin/python bench/transcode.py                        # 60 s unpaced x3, 30 s paced x2
    .venv/bin/python bench/transcode.py --seconds 20 --paced-seconds 10 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from origin.contract.ingest import SEGMENT_SECONDS_DEFAULT  # noqa: E402
from tests.support.net import free_port, wait_for_port  # noqa: E402
from transcoder.command import build_argv  # noqa: E402
from transcoder.ingest import IngestClient  # noqa: E402
from transcoder.ladder import DEFAULT_LADDER, format_ladder  # noqa: E402
from transcoder.runner import run_transcoder  # noqa: E402
from transcoder.session import random_hex, session_id  # noqa: E402
from transcoder.settings import TranscodeSettings  # noqa: E402
from transcoder.source import UrlSource  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TOKEN = "bench-token"
GOAL_RATIO = 1.10


@dataclass(kw_only=True)
class Run:
    mode: str  # "unpaced" | "paced"
    runner: str  # "bare" | "transcoder"
    audio_seconds: float
    cpu_seconds: float
    wall_seconds: float
    ffmpeg_cpu_seconds: float  # the ffmpeg child alone

    @property
    def cpu_per_audio_minute(self) -> float:
        return self.cpu_seconds / self.audio_seconds * 60


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def make_source(path: Path, seconds: float) -> None:
    graph = (
        f"anoisesrc=r=44100:a=0.25:c=pink:d={seconds}[n];sine=f=330:r=44100:d={seconds}[t];"
        "[n][t]amix=inputs=2"
    )
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", graph, "-ac", "2", "-c:a", "pcm_s16le", str(path)],
        check=True,
    )


def settings_for(origin: str, source: Path, paced: bool) -> TranscodeSettings:
    return TranscodeSettings(
        room="bench", source=UrlSource(url=str(source), realtime=paced), origin_url=origin, token=TOKEN
    )


def run_bare(settings: TranscodeSettings, mode: str, audio_seconds: float) -> Run:
    session = session_id(_now(), random_hex())
    local_dir = tempfile.TemporaryDirectory(prefix="bench-transcode-")  # ffmpeg's own playlists and inits
    argv = build_argv(settings, local_dir=local_dir.name)
    level = argv.index("-loglevel") + 1
    argv[level] = "error"
    with local_dir, IngestClient(origin_url=settings.origin_url, room=settings.room, token=TOKEN) as ingest:
        ingest.start(session, settings.ladder, settings.segment_seconds)
        cpu0, t0 = _cpu(resource.RUSAGE_CHILDREN), time.monotonic()
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
        cpu1, t1 = _cpu(resource.RUSAGE_CHILDREN), time.monotonic()
        ingest.end(session, "eos")
    return Run(
        mode=mode, runner="bare", audio_seconds=audio_seconds, cpu_seconds=cpu1 - cpu0, wall_seconds=t1 - t0,
        ffmpeg_cpu_seconds=cpu1 - cpu0,
    )  # fmt: skip


def run_supervised(settings: TranscodeSettings, mode: str, audio_seconds: float) -> Run:
    c0, s0, t0 = _cpu(resource.RUSAGE_CHILDREN), _cpu(resource.RUSAGE_SELF), time.monotonic()
    code = run_transcoder(settings)
    c1, s1, t1 = _cpu(resource.RUSAGE_CHILDREN), _cpu(resource.RUSAGE_SELF), time.monotonic()
    assert code == 0
    return Run(
        mode=mode, runner="transcoder", audio_seconds=audio_seconds,
        cpu_seconds=(c1 - c0) + (s1 - s0), wall_seconds=t1 - t0, ffmpeg_cpu_seconds=c1 - c0,
    )  # fmt: skip


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def summarize(runs: list[Run]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in sorted({r.mode for r in runs}):
        per: dict[str, Any] = {}
        for runner in ("bare", "transcoder"):
            sel = [r for r in runs if r.mode == mode and r.runner == runner]
            cpm = statistics.median(r.cpu_per_audio_minute for r in sel)
            speed = statistics.median(r.audio_seconds / r.wall_seconds for r in sel)
            per[runner] = {
                "cpu_seconds_per_audio_minute": round(cpm, 4),
                "core_fraction_per_room": round(cpm / 60, 5),
                "rooms_per_core": round(60 / cpm, 1),
                "speed_x_realtime": round(speed, 2),
                "runs": len(sel),
            }
        sup = [r for r in runs if r.mode == mode and r.runner == "transcoder"]
        per["transcoder"]["supervisor_cpu_seconds_per_audio_minute"] = round(
            statistics.median((r.cpu_seconds - r.ffmpeg_cpu_seconds) / r.audio_seconds * 60 for r in sup), 4
        )
        per["transcoder"]["ffmpeg_cpu_seconds_per_audio_minute"] = round(
            statistics.median(r.ffmpeg_cpu_seconds / r.audio_seconds * 60 for r in sup), 4
        )
        per["ratio"] = round(
            per["transcoder"]["cpu_seconds_per_audio_minute"] / per["bare"]["cpu_seconds_per_audio_minute"], 3
        )
        out[mode] = per
    return out


def plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(summary)
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.35
    for i, runner in enumerate(("bare", "transcoder")):
        values = [summary[m][runner]["cpu_seconds_per_audio_minute"] for m in modes]
        xs = [x + (i - 0.5) * width for x in range(len(modes))]
        bars = ax.bar(xs, values, width, label="bare ffmpeg" if runner == "bare" else "transcoder (supervised)")
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks(range(len(modes)))
    ax.set_xticklabels([f"{m}\nratio {summary[m]['ratio']:.3f}" for m in modes])
    ax.set_ylabel("CPU seconds per audio-minute")
    ax.set_title(f"Default AAC ladder (a48/a64/a128), {SEGMENT_SECONDS_DEFAULT:g} s fMP4 segments")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=60.0, help="unpaced source length")
    parser.add_argument("--paced-seconds", type=float, default=30.0, help="paced source length (0: skip)")
    parser.add_argument("--repeats", type=int, default=3, help="unpaced runs per runner")
    parser.add_argument("--paced-repeats", type=int, default=2)
    args = parser.parse_args()

    RESULTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    receiver = subprocess.Popen(
        [sys.executable, "-m", "tests.transcoder.receiver", "--port", str(port), "--token", TOKEN], cwd=ROOT
    )
    runs: list[Run] = []
    try:
        wait_for_port(port)
        origin = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryDirectory(prefix="spillway-bench-") as tmp:
            plan = [("unpaced", args.seconds, args.repeats), ("paced", args.paced_seconds, args.paced_repeats)]
            for mode, seconds, repeats in plan:
                if seconds <= 0 or repeats <= 0:
                    continue
                source = Path(tmp) / f"{mode}.wav"
                make_source(source, seconds)
                settings = settings_for(origin, source, paced=mode == "paced")
                for i in range(repeats):
                    for runner in (run_bare, run_supervised) if i % 2 == 0 else (run_supervised, run_bare):
                        run = runner(settings, mode, seconds)
                        runs.append(run)
                        print(
                            f"{mode:8} {run.runner:10} cpu {run.cpu_seconds:6.3f} s"
                            f" (ffmpeg {run.ffmpeg_cpu_seconds:6.3f})  wall {run.wall_seconds:6.2f} s"
                            f"  → {run.cpu_per_audio_minute:.3f} CPU s / audio-min",
                            flush=True,
                        )
    finally:
        receiver.terminate()
        receiver.wait(10)

    summary = summarize(runs)
    result = {
        "benchmark": "bench/transcode.py",
        "ladder": format_ladder(DEFAULT_LADDER),
        "segment_seconds": SEGMENT_SECONDS_DEFAULT,
        "source": "pink noise + 330 Hz tone, 44.1 kHz stereo wav (resampled to 48 kHz)",
        "goal_ratio": GOAL_RATIO,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_avg_1m_at_end": round(os.getloadavg()[0], 2)},
        "summary": summary,
        "runs": [asdict(r) | {"cpu_per_audio_minute": round(r.cpu_per_audio_minute, 4)} for r in runs],
    }  # fmt: skip
    (RESULTS / "transcode.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(summary, RESULTS / "transcode.png")
    for mode, per in summary.items():
        bare, sup = per["bare"], per["transcoder"]
        verdict = "meets" if per["ratio"] <= GOAL_RATIO else "MISSES"
        print(
            f"{mode}: bare {bare['cpu_seconds_per_audio_minute']:.3f} vs transcoder "
            f"{sup['cpu_seconds_per_audio_minute']:.3f} CPU s / audio-minute → ratio {per['ratio']:.3f} "
            f"({verdict} ≤ {GOAL_RATIO}); {sup['rooms_per_core']:.0f} rooms per core "
            f"({100 * sup['core_fraction_per_room']:.1f} % of a core per room); supervisor process alone "
            f"{sup['supervisor_cpu_seconds_per_audio_minute']:.3f} CPU s / audio-minute"
        )
    print(f"wrote {RESULTS / 'transcode.json'} and {RESULTS / 'transcode.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
