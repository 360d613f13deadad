"""The evaluation sets of docs/recipes/wakeword.md, from ../shared/data (the figures there use them).

    python docs/recipes/wakeword_sets.py heldout heldout.jsonl     # negatives training never saw, 0.63 h
    python docs/recipes/wakeword_sets.py real50 ww-real            # ww-real/real50 (training), ww-real/pos (evaluation)
    python docs/recipes/wakeword_sets.py distill distill data/ww-e # distill/audio.jsonl, distill/val.jsonl

``heldout``: Speech Commands' and FSDD's validation clips, UrbanSound8K fold 2 and ljspeech_amateur,
as a manifest with each clip's transcript (the evaluation leaves out those saying a phrase).

``real50``: per phrase, the training speakers with the most recordings (5; 4 for "seven": FSDD has
4 training speakers, and no Speech Commands training speaker says it more than twice), all their
recordings taken in turn up to 50, as symbolic links in ``real50/<phrase>/``. ``pos/`` links every
other real recording of the phrases, none by those speakers, in the layout ``hearkit eval
--positives`` reads (``pos/sc``, ``pos/fsdd``).

``distill``: the audio of ``hearkit train distill`` with none of the evaluation's audio in it.
``audio.jsonl``: a wake-word set's synthetic clips (its real windows, named ``real*``, are left
out: they were cut from every training speaker's recordings), Speech Commands' training clips of
90 % of its training speakers (by a hash of the speaker), FSDD's training speakers, UrbanSound8K
fold 1 and yesno, all without "yes", "stop" and "seven" (the evaluation's positives).
``val.jsonl``: the other 10 % of the Speech Commands training speakers, the same words left out.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import sys
from pathlib import Path

import soundfile as sf

D = Path(os.environ.get("HEARKIT_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))
PHRASES = ("yes", "stop", "seven")


def heldout(out: Path) -> None:
    rows = []

    def add(p: Path, text: str) -> None:
        rows.append({"audio_filepath": str(p), "duration": round(sf.info(p).duration, 3), "text": text})

    for rel in (D / "speech_commands/validation_list.txt").read_text().split():
        p = D / "speech_commands" / rel
        folder = p.parent.name
        add(p, "" if folder == "_silence_" else p.stem.split("_")[0] if folder == "_unknown_" else folder)
    for rel in (D / "fsdd/validation_list.txt").read_text().split():
        add(D / "fsdd" / rel, (D / "fsdd" / rel).parent.name)
    for p in sorted((D / "urbansound8k/fold2").glob("*.flac")):
        add(p, "")
    for line in (D / "ljspeech_amateur/manifest.jsonl").read_text().splitlines():
        u = json.loads(line)
        add(D / "ljspeech_amateur" / u["audio_filepath"], u["text"])
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"{out}: {len(rows)} clips, {sum(r['duration'] for r in rows) / 3600:.2f} h")


def real50(out: Path) -> None:
    sc_val = set((D / "speech_commands/validation_list.txt").read_text().split())
    fs_val = set((D / "fsdd/validation_list.txt").read_text().split())
    rec: dict[str, list[tuple[str, Path, bool, str]]] = {p: [] for p in PHRASES}  # (speaker, file, train?, where)
    for w in ("yes", "stop"):
        for f in sorted((D / "speech_commands" / w).iterdir()):
            rec[w].append((f.name.split("_")[0], f, f"{w}/{f.name}" not in sc_val, f"sc/{w}"))
    for f in sorted((D / "speech_commands/_unknown_").glob("seven_*")):
        rec["seven"].append((f.name.split("_")[1], f, f"_unknown_/{f.name}" not in sc_val, "sc/_unknown_"))
    for f in sorted((D / "fsdd/seven").iterdir()):
        rec["seven"].append((f.name.split("_")[1], f, f"seven/{f.name}" not in fs_val, "fsdd/seven"))
    summary = {}
    for w, items in rec.items():
        counts = collections.Counter(s for s, _, train, _ in items if train)
        top = [s for s, _ in counts.most_common(4 if w == "seven" else 5)]
        left = {s: [x for x in items if x[0] == s and x[2]] for s in top}
        chosen, i = [], 0
        while len(chosen) < 50 and any(left.values()):  # one recording per speaker in turn
            s = top[i % len(top)]
            i += 1
            if left[s]:
                chosen.append(left[s].pop(0))
        for _, f, _, where in chosen:
            d = out / "real50" / w
            d.mkdir(parents=True, exist_ok=True)
            (d / f"real-{where.split('/')[0]}-{f.name}").symlink_to(f)
        rest = [x for x in items if x[0] not in top]
        for _, f, _, where in rest:
            d = out / "pos" / where
            d.mkdir(parents=True, exist_ok=True)
            (d / f.name).symlink_to(f)
        summary[w] = {"speakers": {s: sum(x[0] == s for x in chosen) for s in top}, "train": len(chosen), "eval": len(rest)}
    print(json.dumps(summary, indent=1))


def distill(out: Path, wakeword_set: Path) -> None:
    sc_val = set((D / "speech_commands/validation_list.txt").read_text().split())
    fs_val = set((D / "fsdd/validation_list.txt").read_text().split())
    audio = [p for p in sorted(wakeword_set.glob("*/*.flac")) if not p.name.startswith("real")]
    val = []
    for p in sorted((D / "speech_commands").glob("*/*.flac")):
        label = p.parent.name
        if f"{label}/{p.name}" in sc_val or label in PHRASES or label == "_silence_" or p.name.startswith("seven_"):
            continue
        speaker = p.stem.split("_nohash_")[0].split("_")[-1]
        (val if int(hashlib.sha1(speaker.encode()).hexdigest(), 16) % 10 == 0 else audio).append(p)
    audio += [p for p in sorted((D / "fsdd").glob("*/*.flac"))
              if f"{p.parent.name}/{p.name}" not in fs_val and p.parent.name != "seven"]
    audio += sorted((D / "urbansound8k/fold1").glob("*.flac")) + sorted((D / "yesno").glob("*.flac"))
    out.mkdir(parents=True, exist_ok=True)
    for name, files in (("audio.jsonl", audio), ("val.jsonl", val)):
        (out / name).write_text("".join(json.dumps({"audio_filepath": str(p), "duration": sf.info(p).duration, "text": ""})
                                        + "\n" for p in files))
    print(f"{out}: {len(audio)} training files, {len(val)} held-out files")


if __name__ == "__main__":
    usage = "usage: wakeword_sets.py heldout OUT.jsonl | real50 OUT_DIR | distill OUT_DIR WAKEWORD_SET"
    if len(sys.argv) < 3 or sys.argv[1] not in ("heldout", "real50", "distill") or (sys.argv[1] == "distill") != (len(sys.argv) == 4):
        sys.exit(usage)
    if sys.argv[1] == "distill":
        distill(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        (heldout if sys.argv[1] == "heldout" else real50)(Path(sys.argv[2]))
