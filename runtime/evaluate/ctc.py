"""WER/CER of an exported CTC model on a manifest (torch-free): the body of ``hearkit eval`` for ``task=ctc``.

Decoding goes through ``hearkit.Transcriber`` (chunked, any length), so the
numbers are those a device gets, beam search, lexicon and LM included.
"""

from __future__ import annotations

import os
import time

from hearkit.asr_metrics import error_counts


def eval_ctc(
    model: str | os.PathLike,
    manifest: str | os.PathLike | None = None,
    beam: int | None = None,
    lexicon=None,
    lm=None,
    threads: int = 1,
    max_utterances: int | None = None,
    progress: bool = True,
    hypotheses: bool = False,
    data: str | os.PathLike | None = None,
    **_ignored,
) -> dict:
    """Transcribe every utterance of ``manifest`` with ``model``; corpus WER and CER.

    Args:
        model: a CTC ``pipeline*.onnx`` (waveform input).
        manifest: NeMo JSONL manifest, a folder with ``manifest.jsonl``, or a LibriSpeech folder.
        beam, lexicon, lm: decoding options of ``Transcriber`` (Default: greedy).
        threads: onnxruntime threads (Default: 1).
        max_utterances: an even subset of at most this many utterances (Default: all).
        progress: a progress line on stderr (Default: True).
        hypotheses: include per-utterance reference/hypothesis pairs in the result (Default: False).
        data: alias of ``manifest`` (a folder with ``manifest.jsonl`` or a LibriSpeech folder), as the
            generic ``hearkit eval --data`` passes it; other generic options are ignored.

    Returns:
        ``{"wer", "cer", "utterances", "audio_seconds", "rtf", "word_errors", "words", "char_errors",
        "chars", "dropped_characters", ...}``; rates are fractions.
    """
    from hearkit.errors import ConfigError
    from hearkit.manifest import read_dataset
    from hearkit.transcribe import Transcriber

    manifest = manifest or data
    if manifest is None:
        raise ConfigError("a CTC model is evaluated on a manifest: pass --manifest M.jsonl (or --data DIR)")
    m = read_dataset(manifest)
    utts = m.utterances
    if max_utterances and max_utterances < len(utts):
        step = (len(utts) - 1) / max(1, max_utterances - 1)
        utts = [utts[round(i * step)] for i in range(max_utterances)]
    tr = Transcriber(model, threads=threads, beam=beam, lexicon=lexicon, lm=lm)
    refs, hyps = [], []
    audio_s = busy = 0.0
    from hearkit.audio import WHOLE_FILE_SECONDS, audio_info, load_audio
    from hearkit.progress import StatusLine

    line = StatusLine()
    for i, u in enumerate(utts, 1):
        info = audio_info(u.audio)
        if info["duration"] > WHOLE_FILE_SECONDS:  # a long recording: the transcriber streams it from disk
            x = u.audio
            audio_s += info["duration"]
        else:
            x, _ = load_audio(u.audio, tr.sample_rate)
            audio_s += x.size / tr.sample_rate
        t = time.perf_counter()
        hyps.append(tr.transcribe(x).text)
        busy += time.perf_counter() - t
        refs.append(u.text)
        if progress:
            line.show(f"eval: {i}/{len(utts)} utterances", 100.0 * i / len(utts))
    line.close()
    c = error_counts(refs, hyps)
    out = {
        "model": os.fspath(model),
        "manifest": os.fspath(manifest),
        "utterances": len(utts),
        "audio_seconds": round(audio_s, 2),
        "wer": c["word_errors"] / max(1, c["words"]),
        "cer": c["char_errors"] / max(1, c["chars"]),
        **c,
        "rtf": busy / max(audio_s, 1e-9),
        "threads": threads,
        "decoder": "greedy" if not (beam and beam > 1) and lexicon is None and lm is None else f"beam {beam or 16}",
        "dropped_characters": dict(m.dropped),
    }
    if hypotheses:
        out["hypotheses"] = [{"reference": r, "hypothesis": h} for r, h in zip(refs, hyps)]
    return out
