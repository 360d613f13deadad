"""Speech to text with an exported CTC model, for audio of any length, offline or streamed.

``Transcriber`` reads everything it needs from the model's metadata (vocabulary,
blank, front-end hop, subsampling, sample rate). Long audio runs through the
model in overlapping windows: each window is the *core* (``chunk_seconds``)
plus ``overlap_seconds`` of context on each side, and only the output frames of
the core are kept. Window starts are multiples of one output frame
(hop x subsampling samples), so a kept frame sees the same samples, in the same
position, as in a single run over the whole file: with a receptive field
shorter than the overlap, chunked and whole-file decoding give the same tokens,
and words at chunk edges are neither dropped nor doubled.

Kept frames go straight into an incremental decoder (``hearkit.ctc``); nothing
grows with the length of the audio except the words found, so an hour of audio
needs about as much memory as ten seconds.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Iterator

import numpy as np

from hearkit.audio import BLOCK_SECONDS, ChunkChecker, audio_info, check_waveform, iter_blocks, resample
from hearkit.ctc import DEFAULT_ALPHA, BeamSearchDecoder, GreedyDecoder, Lexicon, Transcript, make_decoder
from hearkit.errors import ConfigError, ModelError, check_finite, run_session
from hearkit.limits import check, check_optional
from hearkit.metadata import ModelInfo

DEFAULT_CHUNK_SECONDS = 20.0  # core of each model window
DEFAULT_OVERLAP_SECONDS = 2.0  # context on each side of the core, dropped after the run
INPUT_NAME = "waveform"
OUTPUT_NAME = "log_probs"


def _log_softmax(x: np.ndarray) -> np.ndarray:
    # Exported graphs end in LogSoftmax, but a quantized graph's dequantized output
    # need not sum to one exactly; renormalising is cheap (frames x vocab) and makes
    # the beam search's probabilities proper.
    m = x.max(axis=-1, keepdims=True)
    return (x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))).astype(np.float32)


class _Stream:
    """Chunking state of one stream: buffered samples, next frame to commit, decoder."""

    def __init__(self, tr: "Transcriber"):
        self.tr = tr
        self.decoder = tr._new_decoder()
        self.buf = np.zeros(0, np.float32)
        self.buf_start = 0  # global index of buf[0], in samples
        self.next_frame = 0  # first output frame not yet given to the decoder
        self.ran = False  # whether any window ran
        self.resampler = None
        self.in_rate = None
        self.check = ChunkChecker()  # the audio policy of docs/design.md §14, one clip warning per stream

    @property
    def buf_end(self) -> int:
        return self.buf_start + self.buf.size

    def feed(self, x: np.ndarray) -> None:
        if x.size:
            self.buf = np.concatenate([self.buf, x]) if self.buf.size else x.copy()
        self._run_complete_windows()

    def _window(self, start: int, end: int) -> np.ndarray:
        return self.buf[start - self.buf_start : end - self.buf_start]

    def _run_complete_windows(self) -> None:
        tr = self.tr
        while True:
            core = self.next_frame * tr.stride
            w0, w1 = max(0, core - tr.overlap), core + tr.chunk + tr.overlap
            if self.buf_end < w1:
                return
            lp = tr._run(self._window(w0, w1))
            self._commit(lp, w0, self.next_frame + tr.chunk // tr.stride)
            # keep only what the next window needs
            drop = max(0, self.next_frame * tr.stride - tr.overlap) - self.buf_start
            if drop > 0:
                self.buf = self.buf[drop:].copy()
                self.buf_start += drop

    def _commit(self, lp: np.ndarray, w0: int, stop_frame: int | None, decoder=None) -> None:
        first = w0 // self.tr.stride
        a = self.next_frame - first
        b = lp.shape[0] if stop_frame is None else min(lp.shape[0], stop_frame - first)
        if b > a:
            (decoder or self.decoder).advance(lp[a:b])
        if decoder is None:
            self.ran = True
            # a model that returns fewer frames than expected must not stall the loop
            self.next_frame = stop_frame if stop_frame is not None else first + max(a, b)

    def _tail(self):
        core = self.next_frame * self.tr.stride
        w0 = max(0, core - self.tr.overlap)
        if self.buf_end > core or (not self.ran and self.buf_end > 0):
            return w0, self.tr._run(self._window(w0, self.buf_end))
        return w0, None

    def partial(self) -> Transcript:
        w0, lp = self._tail()
        if lp is None:
            return self.decoder.partial()
        d = _clone(self.decoder)
        self._commit(lp, w0, None, decoder=d)
        return d.partial()

    def finish(self) -> Transcript:
        if self.resampler is not None:
            self.feed(np.asarray(self.resampler.resample_chunk(np.zeros(0, np.float32), last=True), np.float32))
            self.resampler = None
        if self.buf_end > 0:
            w0, lp = self._tail()
            if lp is not None:
                self._commit(lp, w0, None)
        return self.decoder.finalize()


def _clone(decoder):
    """A copy of a decoder's state that can advance without touching the original."""
    d = object.__new__(type(decoder))
    d.__dict__.update(decoder.__dict__)
    if isinstance(decoder, GreedyDecoder):
        d._words, d._recs = list(decoder._words), list(decoder._recs)
    elif isinstance(decoder, BeamSearchDecoder):
        d._beams = list(decoder._beams)  # entries are never mutated, only replaced
    return d


class Transcriber:
    """Transcribe speech with a CTC ``pipeline.onnx`` (waveform in, log-probs out).

    Args:
        path: model file with ``hearkit.task = ctc`` metadata, or an export folder
            or bundle (``pipeline.int8.onnx`` is taken first, then fp32, fp16).
        threads: onnxruntime intra-op threads (Default: the device profile's, or 1).
        beam: beam width; 1 (or None without lexicon and LM) decodes greedily;
            None with a lexicon or LM means 16 (Default: None).
        lexicon: a ``Lexicon``, a word-list file (one word per line) or an
            iterable of words: only these may be emitted (Default: None).
        lm: an ``NGramLM`` or an ARPA file (Default: None).
        alpha: LM weight (Default: 0.5).
        beta: word insertion bonus (Default: 1.0 with an LM, else 0).
        chunk_seconds: audio per model run, context excluded (Default: 20.0).
            Smaller values give earlier partial results in streaming.
        overlap_seconds: context on each side of a chunk; must cover the model's
            receptive field for chunked results to equal whole-file ones (Default: 2.0).
        providers: onnxruntime execution providers (Default: CPU); not with ``device``.
        spinning: let idle onnxruntime threads spin (Default: the device profile's, or on).
            Pass False when feeding live audio through ``accept_waveform``: spinning
            threads burn a core between periodic runs (docs/design.md §6).
        device: device profile name, path or ``DeviceProfile`` (Default: None, CPU):
            its providers, threads and optimisation level make the session, and its
            preferred variant (int8 / fp32 / fp16) is taken from a folder or bundle.

    Example:
        >>> tr = hearkit.Transcriber("out/asr/pipeline.int8.onnx")
        >>> tr.transcribe("meeting.flac").text
    """

    def __init__(
        self,
        path: str | os.PathLike,
        threads: int | None = None,
        beam: int | None = None,
        lexicon: Lexicon | str | os.PathLike | Iterable[str] | None = None,
        lm=None,
        alpha: float = DEFAULT_ALPHA,
        beta: float | None = None,
        chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
        overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
        providers: list | None = None,
        spinning: bool | None = None,
        device=None,
    ):
        from hearkit.artifacts import INT8, PIPELINE, file_name
        from hearkit.sessions import open_model

        # arguments against hearkit.limits (docs/design.md §13) before the model opens: 2000 threads hung onnxruntime
        threads, beam = check_optional("threads", threads, "threads"), check_optional("beam", beam, "beam")
        alpha, beta = check("lm_weight", alpha, "alpha"), check_optional("lm_weight", beta, "beta")
        chunk_seconds = check("seconds", chunk_seconds, "chunk_seconds")
        overlap_seconds = check("duration_s", overlap_seconds, "overlap_seconds", hi=3600.0)
        # a file, an export folder (int8 pipeline first, or the device's variant) or a verified bundle
        path, self.session = open_model(path, device, prefer="int8", threads=threads, spinning=spinning, providers=providers)
        self.path = os.fspath(path)
        self.info = ModelInfo.from_props(dict(self.session.get_modelmeta().custom_metadata_map), source=self.path)
        if self.info.task != "ctc":
            raise ModelError(
                f"{self.path}: is a '{self.info.task}' model; transcription needs a CTC model (metadata hearkit.task = ctc)"
            )
        if self.info.input != "waveform":
            raise ModelError(
                f"{self.path}: takes '{self.info.input}' input; transcription needs the waveform-input pipeline "
                f"({file_name(PIPELINE)} or {file_name(PIPELINE, INT8)}, front-end included)"
            )
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        self._in = INPUT_NAME if INPUT_NAME in inputs else inputs[0]
        self._out = OUTPUT_NAME if OUTPUT_NAME in outputs else outputs[0]
        fe = self.info.frontend
        self.sample_rate = fe.sample_rate
        self.vocab = self.info.vocab
        self.blank = int(self.info.blank)
        self.subsampling = int(self.info.subsampling or 1)
        self.stride = fe.hop_length * self.subsampling  # samples per output frame
        self.frame_seconds = self.stride / self.sample_rate
        if chunk_seconds <= 0 or overlap_seconds < 0:
            raise ConfigError(
                f"chunk_seconds must be > 0 and overlap_seconds >= 0, got {chunk_seconds} and {overlap_seconds}"
            )
        # both multiples of the output frame, so kept frames line up with a whole-file run
        self.chunk = max(1, round(chunk_seconds * self.sample_rate / self.stride)) * self.stride
        self.overlap = math.ceil(overlap_seconds * self.sample_rate / self.stride) * self.stride
        self.min_samples = fe.n_fft + self.stride  # shorter windows are zero-padded to this

        if lexicon is not None and not isinstance(lexicon, Lexicon):
            if isinstance(lexicon, (str, os.PathLike)):
                lexicon = Lexicon.load(lexicon)
            else:
                lexicon = Lexicon(lexicon)
        if isinstance(lm, (str, os.PathLike)):
            from hearkit.lm import NGramLM

            lm = NGramLM.load(lm)
        self.lexicon, self.lm = lexicon, lm
        self.beam, self.alpha, self.beta = beam, alpha, beta
        self._new_decoder()  # validate the decoding options now, not at the first audio
        self._stream = _Stream(self)

    def _new_decoder(self):
        return make_decoder(
            self.vocab, self.blank, self.beam, self.lexicon, self.lm, self.alpha, self.beta, self.frame_seconds
        )

    def _run(self, x: np.ndarray) -> np.ndarray:
        """Log-probs (frames, vocab) of one window of samples."""
        if x.size < self.min_samples:
            x = np.concatenate([x, np.zeros(self.min_samples - x.size, np.float32)])
        out = run_session(self.session, [self._out], {self._in: np.ascontiguousarray(x, np.float32)[None, :]}, self.path)[0]
        if out.ndim != 3 or out.shape[0] != 1 or out.shape[2] != len(self.vocab):
            raise ModelError(
                f"{self.path}: output '{self._out}' has shape {out.shape}; expected (1, frames, {len(self.vocab)})"
            )
        return _log_softmax(check_finite(out[0], self.path, "log-probs"))

    # -- offline ---------------------------------------------------------------------
    def transcribe(
        self,
        audio: str | os.PathLike | np.ndarray,
        sample_rate: int | None = None,
        progress: bool = False,
    ) -> Transcript:
        """Transcribe a file or an array of any length with bounded memory.

        Args:
            audio: a path (streamed from disk block by block) or samples
                (1-D or (samples, channels); float in [-1, 1] or integer PCM).
            sample_rate: rate of an array in Hz (Default: the model's rate). Ignored for paths.
            progress: write a progress line to stderr (Default: False).

        Returns:
            ``Transcript`` with text and words (times in seconds from the start).
        """
        sample_rate = check_optional("sample_rate", sample_rate, "sample_rate")
        stream = _Stream(self)
        if isinstance(audio, (str, os.PathLike)):
            name = os.fspath(audio)
            total = audio_info(name)["duration"]
            blocks: Iterator[np.ndarray] = iter_blocks(name, self.sample_rate, BLOCK_SECONDS)
        else:
            name = "<array>"
            x = check_waveform(audio)
            if sample_rate is not None:
                x = resample(x, int(sample_rate), self.sample_rate)
            total = x.size / self.sample_rate
            step = int(BLOCK_SECONDS * self.sample_rate)
            blocks = (x[i : i + step] for i in range(0, x.size, step))
        from hearkit.progress import StatusLine

        line = StatusLine()
        t0 = time.perf_counter()
        done = 0
        for block in blocks:
            stream.feed(block)
            done += block.size
            if progress:
                sec = done / self.sample_rate
                pct = 100.0 * sec / total if total else 100.0
                line.show(f"{name}: {sec:.0f}/{total:.0f} s ({min(pct, 100.0):.0f} %, "
                          f"{time.perf_counter() - t0:.1f} s elapsed)", pct)
        result = stream.finish()
        line.close()
        return result

    # -- streaming ---------------------------------------------------------------------
    def accept_waveform(self, chunk: np.ndarray, sample_rate: int | None = None, partial: bool = True) -> Transcript | None:
        """Feed live audio; return the partial result (or None when ``partial`` is False).

        Complete chunks are decoded for good; with ``partial`` the audio after
        them is run once more to give a provisional tail (one extra model run of
        at most chunk + 2 x overlap seconds per call: call it every second or
        so, not every 10 ms, or pass ``partial=False`` in between).

        Args:
            chunk: samples, any length (1-D or (samples, channels), float in [-1, 1] or integer
                PCM; channels are averaged, slight overshoot clipped with one warning per stream,
                NaN, far out-of-range samples and (channels, samples) arrays refused: docs/design.md §14).
            sample_rate: rate of ``chunk`` in Hz; resampled to the model's with a
                streaming resampler (Default: the model's rate).
            partial: compute and return the partial result (Default: True).
        """
        sample_rate = check_optional("sample_rate", sample_rate, "sample_rate")
        s = self._stream
        x = s.check(chunk)
        if x.size == 0:
            return s.partial() if partial else None
        if sample_rate is not None and int(sample_rate) != self.sample_rate:
            if s.in_rate is not None and s.in_rate != int(sample_rate):
                raise ConfigError(
                    f"sample rate changed within a stream ({s.in_rate} -> {sample_rate} Hz); call reset() first"
                )
            if s.resampler is None:
                import soxr

                s.resampler = soxr.ResampleStream(int(sample_rate), self.sample_rate, 1, dtype="float32", quality="HQ")
                s.in_rate = int(sample_rate)
            x = np.asarray(s.resampler.resample_chunk(x), np.float32)
        s.feed(x)
        return s.partial() if partial else None

    def finalize(self) -> Transcript:
        """Decode the rest of the stream, return the final result, and start a new stream."""
        result = self._stream.finish()
        self.reset()
        return result

    def reset(self) -> None:
        """Drop the current stream (buffered audio and decoder state); times restart at 0."""
        self._stream = _Stream(self)
