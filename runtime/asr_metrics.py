"""Word and character error rates (torch-free), as used by training, verify and eval.

WER = (substitutions + deletions + insertions) / reference words, CER the same
over characters (spaces included, as is usual for character CTC models).
Corpus rates sum the edits over all utterances and divide by the summed
reference lengths, so long utterances weigh more (the standard definition).
"""

from __future__ import annotations

from collections.abc import Sequence


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance between two sequences (unit costs), O(len(ref) * len(hyp)) time, O(len(hyp)) memory."""
    if not ref:
        return len(hyp)
    if not hyp:
        return len(ref)
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def error_counts(refs: Sequence[str], hyps: Sequence[str]) -> dict:
    """Summed word and character edits and reference lengths of paired transcripts."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    we = wn = ce = cn = 0
    for r, h in zip(refs, hyps):
        rw, hw = r.split(), h.split()
        we += edit_distance(rw, hw)
        wn += len(rw)
        ce += edit_distance(r, h)
        cn += len(r)
    return {"word_errors": we, "words": wn, "char_errors": ce, "chars": cn}


def wer_cer(refs: Sequence[str], hyps: Sequence[str]) -> tuple[float, float]:
    """Corpus WER and CER as fractions (0.05 = 5 %); 0 when the references are empty."""
    c = error_counts(refs, hyps)
    return c["word_errors"] / max(1, c["words"]), c["char_errors"] / max(1, c["chars"])
