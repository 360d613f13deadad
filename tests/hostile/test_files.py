"""Files on disk: occupied output folders, folders holding the input, bundles without or beyond their
manifest, a full disk, and two writers at once (docs/design.md §15).

Every refusal is one line (exit 2) naming the folder or file, and no user file changes.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from hearkit import artifacts, files

pytest.importorskip("torch", reason="the export and bundle behind these cases need hearkit[train]")
pytest.importorskip("onnx", reason="the export and bundle behind these cases need hearkit[train]")

SR = 16000


def _wav(path: Path, seconds: float = 1.0, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32), SR)
    return path


@pytest.fixture(scope="module")
def env(untrained_classifier, tonegen, tmp_path_factory):
    """A checkpoint, its fp32 export, a bundle of it (no ORT), calibration audio, a clip, a words set and a manifest."""
    from hearkit.export.exporter import export_classifier
    from hearkit.export.package import package

    root = tmp_path_factory.mktemp("files")
    run = root / "run"
    run.mkdir()
    ckpt = run / "best.pt"
    ckpt.write_bytes(Path(untrained_classifier).read_bytes())
    export = root / "export"
    export_classifier(ckpt, export, quantize=(), log=lambda m: None)
    calib = root / "calib"
    for i in range(4):
        _wav(calib / f"{i}.wav", seed=i)
    bundle = root / "bundle"
    package(export, bundle, "x86-vnni", data=calib, ort=False, c_source=False, log=lambda m: None)
    words = tonegen.make_tones(root / "words", clip_seconds=0.5, speakers=4, val_speakers=1)
    manifest = tonegen.corpus(root / "corpus", n=4)
    text = root / "text.txt"
    text.write_text("yes no\nup down\n")
    return dict(root=root, ckpt=ckpt, export=export, calib=calib, bundle=bundle, clip=_wav(root / "clip.wav"),
                words=words, manifest=manifest, text=text)


def _no_temps(*folders: Path) -> None:
    for d in folders:
        left = [p for p in Path(d).rglob("*") if files.is_temp(p.name)]
        assert not left, f"temporary files left: {left}"


# -- occupied output folders ---------------------------------------------------------------

def _occupy(folder: Path, kind: str, elsewhere: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "user-file":
        (folder / "notes.txt").write_text("mine")
    elif kind == "hidden-file":
        (folder / ".gitkeep").write_text("")
    elif kind == "empty-subfolder":
        (folder / "keep").mkdir()
    elif kind == "symlink":
        (folder / "link").symlink_to(elsewhere)
    elif kind == "web-manifest":
        (folder / "manifest.json").write_text('{"name": "my web app", "icons": []}')
    elif kind == "other-export":
        (folder / "export.json").write_text('{"task": "classify", "files": {}}')
        (folder / "pipeline.onnx").write_bytes(b"not yours to replace")


OCCUPANTS = ["user-file", "hidden-file", "empty-subfolder", "symlink", "web-manifest", "other-export"]


def _folder_command(cmd: str, env: dict, out: Path) -> list:
    return {
        "export": ["export", env["ckpt"], "--quantize", "none", "-o", out],
        "train-classify": ["train", "classify", "--data", env["words"], "--epochs", "1", "-o", out],
        "train-ctc": ["train", "ctc", "--manifest", env["manifest"], "--val-manifest", env["manifest"], "-o", out],
        "data-concat": ["data", "concat", "--words", env["words"], "--hours", "0.001", "-o", out],
        "data-synth": ["data", "synth", "--text", env["text"], "-o", out],
        "demo": ["demo", "-o", out],
        "package": ["package", env["export"], "--device", "x86-vnni", "--no-ort", "-o", out],
    }[cmd]


FOLDER_COMMANDS = ["export", "train-classify", "train-ctc", "data-concat", "data-synth", "demo", "package"]


@pytest.mark.parametrize("kind", OCCUPANTS)
@pytest.mark.parametrize("cmd", FOLDER_COMMANDS)
def test_an_occupied_output_folder_is_refused(hostile, env, tmp_path, cmd, kind):
    out = tmp_path / "out"
    _occupy(out, kind, env["clip"])
    with hostile.unchanged(out):
        line = hostile.refused(hostile.cli(*_folder_command(cmd, env, out)), str(out))
    # --force helps everywhere but package, which replaces only a bundle it wrote
    assert ("--force" in line) == (cmd != "package"), line
    assert not (out / files.LOCK_NAME).exists()


def test_concat_refuses_an_existing_manifest_and_replaces_it_with_force(hostile, env, tmp_path):
    out = tmp_path / "words"
    out.mkdir()
    (out / "manifest.jsonl").write_text('{"audio_filepath": "x.flac", "duration": 1.0, "text": "mine"}\n')
    with hostile.unchanged(out):
        hostile.refused(hostile.cli(*_folder_command("data-concat", env, out)), str(out), "--force")
    r = hostile.cli(*_folder_command("data-concat", env, out), "--force")
    assert r.code == 0, r
    assert "mine" not in (out / "manifest.jsonl").read_text()
    _no_temps(out)


@pytest.mark.parametrize("case", ["features-npy", "features-user-file", "lm-arpa", "join-file", "join-folder"])
def test_an_existing_output_file_is_refused(hostile, env, tmp_path, case):
    target = tmp_path / {"features-npy": "f.npy", "features-user-file": "notes.txt", "lm-arpa": "lm.arpa",
                         "join-file": "all.jsonl", "join-folder": "joined/manifest.jsonl"}[case]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("mine")
    args = {"features-npy": ["features", env["clip"], "-o", target],
            "features-user-file": ["features", env["clip"], "-o", target],
            "lm-arpa": ["lm", "build", env["text"], "-o", target],
            "join-file": ["data", "join", env["manifest"], "-o", target],
            "join-folder": ["data", "join", env["manifest"], "-o", target.parent]}[case]
    with hostile.unchanged(tmp_path):
        hostile.refused(hostile.cli(*args), str(target), "--force")


@pytest.mark.parametrize("cmd", ["export", "train-classify", "data-concat", "data-synth", "demo", "package"])
def test_an_output_that_is_a_file_is_refused(hostile, env, tmp_path, cmd):
    out = tmp_path / "out"
    out.write_text("a file, not a folder")
    with hostile.unchanged(tmp_path):
        line = hostile.refused(hostile.cli(*_folder_command(cmd, env, out), "--force"), str(out))
    assert "not a folder" in line or "is a file" in line, line


@pytest.mark.parametrize("cmd", ["features", "lm", "export", "data-concat", "join"])
def test_an_output_below_a_file_is_one_line(hostile, env, tmp_path, cmd):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    args = {"features": ["features", env["clip"], "-o", blocker / "f.npy"],
            "lm": ["lm", "build", env["text"], "-o", blocker / "lm.arpa"],
            "export": _folder_command("export", env, blocker / "sub"),
            "data-concat": _folder_command("data-concat", env, blocker / "sub"),
            "join": ["data", "join", env["manifest"], "-o", blocker / "all.jsonl"]}[cmd]
    with hostile.unchanged(tmp_path):
        hostile.refused(hostile.cli(*args), str(blocker))


# -- output folders that hold the input ---------------------------------------------------


@pytest.mark.parametrize("which", ["export-itself", "export-parent", "export-grandparent"])
def test_package_never_writes_over_the_export_even_with_force(hostile, env, tmp_path, which):
    proj = tmp_path / "proj"
    exp = proj / "models" / "export"
    exp.parent.mkdir(parents=True)
    os.symlink(env["export"], exp)  # the export as a user's project holds it
    out = {"export-itself": exp, "export-parent": exp.parent, "export-grandparent": proj}[which]
    with hostile.unchanged(env["export"]):
        line = hostile.refused(hostile.cli("package", exp, "--device", "x86-vnni", "--no-ort", "--force", "-o", out),
                               str(out), "contain the export")
    assert "not even with --force" in line


@pytest.mark.parametrize("which", ["run-folder", "run-parent"])
def test_export_never_writes_over_the_checkpoint_folder_even_with_force(hostile, env, which):
    out = env["ckpt"].parent if which == "run-folder" else env["ckpt"].parent.parent
    with hostile.unchanged(env["ckpt"].parent):
        hostile.refused(hostile.cli("export", env["ckpt"], "--quantize", "none", "--force", "-o", out),
                        str(out), "the folder of the checkpoint")


def test_concat_never_writes_over_its_words_even_with_force(hostile, env):
    with hostile.unchanged(env["words"]):
        hostile.refused(hostile.cli(*_folder_command("data-concat", env, env["words"]), "--force"),
                        str(env["words"]), "input folder")


# -- bundles without their manifest, or with more than it lists ----------------------------------


def _stripped(env, tmp_path, trace: str) -> Path:
    b = tmp_path / "stripped"
    b.mkdir()
    for name in artifacts.load_manifest(env["bundle"])["files"]:
        if name != "report.json":
            (b / name).write_bytes((env["bundle"] / name).read_bytes())
    if trace == "ort":
        (b / "pipeline.int8.ort").write_bytes(b"ORT")
    elif trace == "ops-config":
        (b / artifacts.OPS_CONFIG).write_text("ai.onnx;17;Add\n")
    elif trace == "c-header":
        (b / artifacts.C_HEADER).write_text("#define HEARKIT 1\n")
    elif trace == "c-source":
        (b / artifacts.C_SOURCE).write_text("const int x;\n")
    assert (b / artifacts.BUNDLE_README).read_text().startswith("# hearkit bundle")
    if trace != "readme":
        (b / artifacts.BUNDLE_README).unlink()  # each trace on its own
    return b


@pytest.mark.parametrize("trace", ["readme", "ort", "ops-config", "c-header", "c-source"])
def test_run_refuses_a_bundle_without_its_manifest(hostile, env, tmp_path, trace):
    b = _stripped(env, tmp_path, trace)
    with hostile.unchanged(b):
        line = hostile.refused(hostile.cli("run", b, env["clip"]), str(b), artifacts.MANIFEST)
    assert "hearkit package" in line  # says what to do


@pytest.mark.parametrize("how", ["stream-folder", "transcribe-folder", "run-file-inside", "stream-file-inside"])
def test_every_runner_refuses_a_bundle_without_its_manifest(hostile, env, tmp_path, how):
    b = _stripped(env, tmp_path, "readme")
    model = b if how.endswith("folder") else b / "pipeline.int8.onnx"
    cmd = how.split("-")[0]
    with hostile.unchanged(b):
        hostile.refused(hostile.cli(cmd, model, env["clip"]), str(b), artifacts.MANIFEST)


def test_a_plain_export_still_runs(hostile, env):
    r = hostile.cli("run", env["export"], env["clip"])
    assert r.code == 0, r


def _copy_bundle(env, tmp_path) -> Path:
    b = tmp_path / "bundle"
    b.mkdir()
    for p in env["bundle"].iterdir():
        (b / p.name).write_bytes(p.read_bytes())
    return b


EXTRAS = {
    "top-level-file": lambda b: (b / "notes.txt").write_text("mine"),
    "nested-file": lambda b: ((b / "sub").mkdir(), (b / "sub" / "evil.onnx").write_bytes(b"x")),
    "symlink": lambda b: (b / "link.onnx").symlink_to(b / "pipeline.onnx"),
    "temp-file": lambda b: (b / ".pipeline.onnx.0123456789ab.tmp.onnx").write_bytes(b"half"),
    "journal": lambda b: (b / ".hearkit-partial.json").write_text("{}"),
    "extra-model": lambda b: (b / "pipeline.fp16.onnx").write_bytes((b / "pipeline.onnx").read_bytes()),
}


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_verify_lists_files_the_manifest_does_not(hostile, env, tmp_path, extra):
    b = _copy_bundle(env, tmp_path)
    EXTRAS[extra](b)
    with hostile.unchanged(b):
        line = hostile.refused(hostile.cli("package", "--verify", b), str(b), "not listed in manifest.json")
    extra_names = artifacts.unlisted_files(b, artifacts.load_manifest(b))
    assert extra_names and all(n in line for n in extra_names), line


TAMPER = {
    "flipped-byte": (lambda b: _flip(b / "pipeline.onnx"), "pipeline.onnx"),
    "truncated-model": (lambda b: (b / "model.onnx").write_bytes((b / "model.onnx").read_bytes()[:100]), "model.onnx"),
    "appended-readme": (lambda b: (b / "README.md").write_text((b / "README.md").read_text() + "x"), "README.md"),
    "missing-file": (lambda b: (b / "frontend.onnx").unlink(), "frontend.onnx"),
    "manifest-removed": (lambda b: (b / "manifest.json").unlink(), "manifest.json"),
    "manifest-not-json": (lambda b: (b / "manifest.json").write_text("{"), "manifest.json"),
}


def _flip(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))


@pytest.mark.parametrize("case", sorted(TAMPER))
def test_verify_refuses_a_tampered_bundle(hostile, env, tmp_path, case):
    b = _copy_bundle(env, tmp_path)
    change, name = TAMPER[case]
    change(b)
    with hostile.unchanged(b):
        hostile.refused(hostile.cli("package", "--verify", b), name)


def test_repackaging_keeps_a_user_file_with_force_and_refuses_a_clash(hostile, env, tmp_path):
    b = _copy_bundle(env, tmp_path)
    (b / "NOTES.txt").write_text("mine")
    with hostile.unchanged(b):
        hostile.refused(hostile.cli("package", env["export"], "--device", "x86-vnni", "--no-ort", "--data", env["calib"],
                                    "-o", b), str(b), "--force")
    # a user file named like a file the new bundle writes (here the C header, which the old bundle lacked)
    (b / artifacts.C_HEADER).write_text("/* my header */")
    fake = artifacts.load_manifest(b)
    fake["files"].pop("README.md")  # README.md now counts as the user's: the new bundle would replace it
    artifacts.write_manifest(b, fake)
    with hostile.unchanged(b):
        hostile.refused(hostile.cli("--quiet", "package", env["export"], "--device", "x86-vnni", "--no-ort", "--data",
                                    env["calib"], "--force", "-o", b), str(b), "README.md", "move it away")


# -- a full disk, a read-only destination --------------------------------------------------


def _fail_replace_into(monkeypatch, target: Path, err: int = errno.ENOSPC) -> None:
    real = os.replace

    def replace(src, dst, *a, **kw):
        if Path(dst) == Path(target):
            raise OSError(err, os.strerror(err))
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT], ids=errno.errorcode.get)
@pytest.mark.parametrize("cmd", ["features", "lm"])
def test_a_failing_write_keeps_the_old_file(hostile, env, tmp_path, monkeypatch, cmd, err):
    target = tmp_path / ("f.npy" if cmd == "features" else "lm.arpa")
    target.write_text("old")
    args = ["features", env["clip"], "-o", target] if cmd == "features" else ["lm", "build", env["text"], "-o", target]
    _fail_replace_into(monkeypatch, target, err)
    line = hostile.refused(hostile.cli(*args, "--force"), str(target))
    assert os.strerror(err) in line and "nothing was written" in line
    assert target.read_text() == "old"
    _no_temps(tmp_path)


def _api_writers(env):
    from hearkit.plots.detection import plot_confusion
    from hearkit.export.onnx_io import save_model
    from hearkit.lm import NGramLM
    from hearkit.manifest import Utterance, write_manifest
    from hearkit.training.checkpoint import load_checkpoint, save_checkpoint

    import onnx

    return {
        "export.json": ("export.json", lambda p: artifacts.write_export(p.parent, {"task": "classify"})),
        "bundle-manifest": ("manifest.json", lambda p: artifacts.write_manifest(p.parent, {"format": "x"})),
        "checkpoint": ("last.pt", lambda p: save_checkpoint(dict(load_checkpoint(env["ckpt"])), p)),
        "onnx-graph": ("pipeline.onnx", lambda p: save_model(onnx.load(os.fspath(env["export"] / "frontend.onnx")), p)),
        "png": ("confusion.png", lambda p: plot_confusion(np.eye(2, dtype=int), ["a", "b"], p)),
        "jsonl-manifest": ("manifest.jsonl", lambda p: write_manifest([Utterance(str(env["clip"]), "a", 1.0)], p)),
        "arpa": ("lm.arpa", lambda p: NGramLM.build([["a", "b"]], 2).save(p)),
        "json": ("summary.json", lambda p: files.write_json(p, {"a": 1})),
        "audio": ("clip.flac", lambda p: files.write_audio(p, np.zeros(16000, np.float32), 16000, "PCM_16")),
    }


@pytest.mark.parametrize("what", ["export.json", "bundle-manifest", "checkpoint", "onnx-graph", "png",
                                  "jsonl-manifest", "arpa", "json", "audio"])
def test_a_full_disk_in_any_writer_keeps_the_old_file(env, tmp_path, monkeypatch, what):
    name, write = _api_writers(env)[what]
    target = tmp_path / name
    target.write_bytes(b"old bytes")
    _fail_replace_into(monkeypatch, target)
    with pytest.raises(OSError, match="No space left") as info:
        write(target)
    assert info.value.filename == str(target)
    assert target.read_bytes() == b"old bytes"
    _no_temps(tmp_path)
    monkeypatch.undo()
    write(target)  # and with room again it writes the whole file
    assert target.stat().st_size > len(b"old bytes")


_LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a write past the limit fails with EFBIG instead of killing
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
from hearkit.cli import main
sys.argv = ["hearkit"] + sys.argv[1:]
main()
"""


@pytest.mark.parametrize("cmd", ["features", "lm"])
def test_a_file_size_limit_mid_write_keeps_the_old_file(hostile, env, tmp_path, cmd):
    """RLIMIT_FSIZE in a real process: the write itself fails part-way (not only the rename)."""
    target = tmp_path / ("f.npy" if cmd == "features" else "lm.arpa")
    target.write_text("old")
    if cmd == "features":
        args = ["features", _wav(tmp_path / "long.wav", seconds=20), "-o", target, "--force"]
    else:
        big = tmp_path / "big.txt"
        big.write_text("".join(f"w{i} w{i + 1} w{i + 2}\n" for i in range(20000)))  # 20000 words: a large ARPA
        args = ["lm", "build", big, "--no-normalize", "-o", target, "--force"]
    p = subprocess.run([sys.executable, "-c", _LIMITED.format(limit=64 * 1024), *map(str, args)],
                       capture_output=True, text=True, timeout=120)
    hostile.refused(SimpleNamespace(code=p.returncode, stdout=p.stdout, stderr=p.stderr, exception=None), str(target))
    assert target.read_text() == "old"
    _no_temps(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the EACCES cases above stand in")
def test_a_read_only_folder_is_one_line(hostile, env, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        hostile.refused(hostile.cli("features", env["clip"], "-o", ro / "f.npy"), str(ro))
    finally:
        ro.chmod(0o755)


# -- two writers at once --------------------------------------------------------------------

_HOLD = "import sys, time; from hearkit.files import writing\nwith writing(sys.argv[1]):\n print('held', flush=True); time.sleep(120)"


@pytest.fixture
def held(tmp_path):
    """``hold(folder)`` -> the pid of another process writing ``folder``; stopped at the end."""
    procs = []

    def hold(folder: Path) -> int:
        p = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
        procs.append(p)
        assert p.stdout.readline().strip() == "held"
        return p.pid

    yield hold
    for p in procs:
        p.kill()
        p.wait()


def _busy_command(cmd: str, env: dict, folder: Path) -> list:
    return {
        "calibrate": ["calibrate", folder, "--negatives", env["calib"]],
        "verify": ["verify", folder, "--latency-runs", "0"],
        "data-mine": ["data", "mine", env["export"], folder, "--negatives", env["calib"]],
    }.get(cmd) or _folder_command(cmd, env, folder)


@pytest.mark.parametrize("cmd", FOLDER_COMMANDS + ["calibrate", "verify", "data-mine"])
def test_a_second_writer_is_refused_naming_the_first(hostile, env, tmp_path, held, cmd):
    folder = tmp_path / "busy"
    if cmd in ("calibrate", "verify"):  # they write into an export
        folder.mkdir()
        for p in env["export"].iterdir():
            (folder / p.name).write_bytes(p.read_bytes())
    pid = held(folder)
    with hostile.unchanged(folder):
        line = hostile.refused(hostile.cli(*_busy_command(cmd, env, folder)), str(folder), f"pid {pid}")
    assert "being written by another hearkit process" in line


def test_a_lock_file_a_kill_left_is_taken_over(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / files.LOCK_NAME).write_text("999999\n")  # no process holds it
    with files.writing(folder):
        assert (folder / files.LOCK_NAME).read_text().strip() == str(os.getpid())
        files.check_output_dir(folder, force=False)  # the lock file does not make the folder occupied
    assert not (folder / files.LOCK_NAME).exists()


def test_the_checkpoint_path_works_from_any_directory(env, tmp_path, monkeypatch):
    summary = artifacts.read_export(env["export"])
    assert Path(summary["checkpoint"]).is_absolute()
    moved = tmp_path / "moved"
    (moved / "export").mkdir(parents=True)
    (moved / "run").mkdir()
    (moved / "run" / "best.pt").write_bytes(env["ckpt"].read_bytes())
    s = dict(summary, checkpoint=str(tmp_path / "gone" / "best.pt"))  # the absolute path no longer exists
    monkeypatch.chdir(tmp_path)
    assert artifacts.export_checkpoint(moved / "export", s) == moved / "export" / summary["checkpoint_relative"]
    assert artifacts.export_checkpoint(moved / "export", s).is_file()


def test_export_force_removes_only_the_graphs_the_old_export_listed(tmp_path):
    """--force into an earlier export: its graphs the new one does not write go; the user's files stay."""
    from hearkit.workbench.export import _recorded_graphs, _remove_stale

    out = tmp_path / "out"
    out.mkdir()
    for n in ("pipeline.fp16.onnx", "model.fp16.onnx", "pipeline.onnx", "mine.onnx", "notes.txt"):
        (out / n).write_bytes(b"x")
    listed = {"pipeline.fp16.onnx": {}, "model.fp16.onnx": {}, "pipeline.onnx": {}, "../outside.onnx": {}, "mine.onnx": {}}
    artifacts.write_export(out, {"task": "classify", "files": listed})
    before = _recorded_graphs(out)
    assert before == {"pipeline.fp16.onnx", "model.fp16.onnx", "pipeline.onnx"}  # names artifacts spells, inside
    _remove_stale(out, before - {"pipeline.onnx"})
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "mine.onnx", "notes.txt", "pipeline.onnx"]
