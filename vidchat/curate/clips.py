"""From shots, voices and bound faces to the release's clips (one rule, also for ground truth).

Inside each kept shot, each speaker's diarised turns (pieces closer than `merge_gap` joined)
of at least `min_clip` seconds are talking segments. Segments are numbered in time order over
the whole source (the clip name's scene number). A segment gives the speaker's talking clip
(`..._{X}`, cropped to the face bound to X's voice) and, when the shot shows a second face,
the other person's listening clip (`..._{Y}_None`, same window). Dialogue pairs, multi-turn
histories and listening pairs then follow from the release loader's rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from vidchat.curate.faces import crop_box
from vidchat.data.speakervid.names import clip_stem


@dataclass(frozen=True)
class ClipOptions:
    min_clip: float = 1.0  # s
    merge_gap: float = 0.5  # s
    crop_scale: float = 1.6  # crop side / detected face side (head and some shoulders)


def talking_segments(turns: list[dict], shot: dict, fps: float, opts: ClipOptions) -> list[dict]:
    """[{speaker, start, end}] (s) inside one shot `{start, end}` (frames), each speaker's
    turns closer than `merge_gap` joined; pieces shorter than `min_clip` included (the caller
    drops them, with their reason)."""
    lo, hi = shot["start"] / fps, shot["end"] / fps
    pieces: list[dict] = []
    for turn in sorted(turns, key=lambda t: t["start"]):
        start, end = max(turn["start"], lo), min(turn["end"], hi)
        if end <= start:
            continue
        last = pieces[-1] if pieces else None
        if last and last["speaker"] == turn["speaker"] and start - last["end"] < opts.merge_gap:
            last["end"] = end
        else:
            pieces.append({"speaker": turn["speaker"], "start": start, "end": end})
    return pieces


def _turn_name(source: dict, piece: dict) -> str:
    return f"{source['ytid']} voice {piece['speaker']} {piece['start']:.2f}-{piece['end']:.2f} s"


def _unbound_reason(shot: dict, speaker: str) -> str:
    scores = shot.get("correlations", {}).get(speaker) or []
    best = f"best sync {max(scores):.2f} over {len(scores)} face(s)" if scores else "no score"
    return f"no face's mouth followed this voice in shot {shot['index']} ({best})"


def plan_clips(
    source: dict,
    shots: list[dict],
    turns: list[dict],
    opts: ClipOptions,
    dropped: list[dict] | None = None,
) -> list[dict]:
    """Clips of one source. `source`: ytid, height, width, fps, duration; each shot: start,
    end (frames), faces [{box}], binding {speaker: {face, sync, conf}}, correlations
    {speaker: [score per face]}. `dropped`, when given, gets `{item, reason}` for every piece
    of speech that makes no clip: in no kept shot, shorter than `min_clip`, or bound to no
    face."""
    fps, h, w = source["fps"], source["height"], source["width"]
    dropped = [] if dropped is None else dropped
    for turn in turns:
        if not any(
            min(turn["end"], s["end"] / fps) > max(turn["start"], s["start"] / fps) for s in shots
        ):
            dropped.append({"item": _turn_name(source, turn), "reason": "in no kept shot"})
    segments = []
    for shot in shots:
        for seg in talking_segments(turns, shot, fps, opts):
            if seg["end"] - seg["start"] < opts.min_clip:
                dropped.append(
                    {
                        "item": _turn_name(source, seg),
                        "reason": (
                            f"{seg['end'] - seg['start']:.2f} s in shot {shot['index']}, shorter than "
                            f"min_clip {opts.min_clip:g} s"
                        ),
                    }
                )
            else:
                segments.append((seg, shot))
    segments.sort(key=lambda item: item[0]["start"])
    clips = []
    for scene, (seg, shot) in enumerate(segments):
        bound = shot["binding"].get(seg["speaker"])
        if bound is None:
            dropped.append(
                {"item": _turn_name(source, seg), "reason": _unbound_reason(shot, seg["speaker"])}
            )
            continue
        other = [k for k in range(len(shot["faces"])) if k != bound["face"]]
        people = [(seg["speaker"], bound["face"], False)]
        if other:
            people.append(("B" if seg["speaker"] == "A" else "A", other[0], True))
        for letter, face, listener in people:
            bbox = crop_box(shot["faces"][face]["box"], opts.crop_scale, w, h)
            side = 2 * round((bbox[2] - bbox[0]) * w / 2)
            clips.append(
                {
                    "stem": clip_stem(source["ytid"], h, w, scene, letter, listener),
                    "speaker": letter,
                    "listener": listener,
                    "shot": shot["index"],
                    "face": face,
                    "start": round(seg["start"], 3),
                    "duration": round(seg["end"] - seg["start"], 3),
                    "shot_window": [round(shot["start"] / fps, 3), round(shot["end"] / fps, 3)],
                    "bbox": bbox,
                    "size": side,
                    "sync": None if listener else bound["sync"],
                    "conf": None if listener else bound["conf"],
                }
            )
    return clips
