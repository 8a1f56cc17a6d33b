"""Transcribing new recordings with a logged speech run (`rnnbench predict`): the task's `predict` hook, and the
artifact that makes it possible, `task/front_end.json` (data source, MFCC settings, deltas, normalisation, the label
vocabulary and the beam width).

Audio is turned into features exactly as in training (resampled, MFCCs, deltas, per-utterance normalisation); runs
on AN4 read precomputed `.mfc` cepstra instead, which rnnbench cannot compute from audio. Frame stacking
(`subsample`) is part of the model, so the features go in as they are.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rnnbench import audio, ctc
from rnnbench.errors import DataError, UserError

# The runner stores the files of the `artifacts` hook under "task/" in the run's artifacts.
FRONT_END_ARTIFACT = "task/front_end.json"
FRONT_END_FORMAT = "rnnbench.speech.front_end/1"
CEPSTRA_SOURCES = ("an4",)  # sources whose features are precomputed cepstra files, not audio


def save_front_end(path: Path, dataset: str, settings: audio.MfccSettings, vocabulary: ctc.Vocabulary,
                   beam_width: int) -> None:
    """Everything that turns a recording into the run's model input and its output back into a transcript."""
    payload = {"format": FRONT_END_FORMAT, "dataset": dataset,
               "input": "cepstra" if dataset in CEPSTRA_SOURCES else "audio", "settings": settings.to_dict(),
               "vocabulary": vocabulary.to_config(), "beam_width": beam_width}
    Path(path).write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")


def load_front_end(path: Path) -> tuple[dict, audio.MfccSettings, ctc.Vocabulary]:
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        if payload.get("format") != FRONT_END_FORMAT:
            raise ValueError(f"format is {payload.get('format')!r}, expected {FRONT_END_FORMAT!r}")
        settings = audio.MfccSettings(**payload["settings"])
        vocabulary = ctc.Vocabulary(payload["vocabulary"]["symbols"], payload["vocabulary"]["unit"])
        if int(payload["beam_width"]) < 1:
            raise ValueError(f"beam_width {payload['beam_width']} is below 1")
    except (OSError, ValueError, KeyError, TypeError, UserError) as error:
        raise DataError(f"{path}: not a speech front-end file ({error}); use the front_end.json that the speech "
                        "task logged with the run") from None
    return payload, settings, vocabulary


def features_of(path: Path, front_end: dict, settings: audio.MfccSettings, run_id: str) -> np.ndarray:
    """The model input (frames, features) of one file, computed as the run computed its training features."""
    from rnnbench.tasks.speech.readers.an4 import read_mfc

    wanted = "a .mfc cepstra file" if front_end["input"] == "cepstra" else "a wav file"
    if not path.is_file():
        raise UserError(f"{path}: no such file; give the path of {wanted}")
    if front_end["input"] == "cepstra":
        if path.suffix.lower() != ".mfc":
            raise UserError(f"{path}: run {run_id} was trained on AN4's precomputed cepstra, which rnnbench cannot "
                            "compute from audio; give the utterance's .mfc file")
        return audio.postprocess(read_mfc(path), settings.deltas, settings.normalize)
    if path.suffix.lower() == ".mfc":
        raise UserError(f"{path}: .mfc files hold AN4 cepstra, but run {run_id} ({front_end['dataset']}) computes "
                        "MFCCs from audio; give a wav file (or any format soundfile reads)")
    return audio.features_from_waveform(*audio.load_audio(path), settings)


def transcribe(model, features: np.ndarray, vocabulary: ctc.Vocabulary, beam_width: int) -> tuple[str, str]:
    """(greedy, beam search) transcripts of one utterance's features."""
    expected = model.inputs[0].shape[-1]
    if expected is not None and features.shape[1] != expected:
        raise DataError(f"the features have {features.shape[1]} values per frame but the model reads {expected}; "
                        "the run's front_end.json does not belong to its model")
    logits = np.asarray(model.predict_on_batch(features[None].astype(np.float32)))
    return (vocabulary.decode(ctc.decode_logits(logits, "greedy")[0]),
            vocabulary.decode(ctc.decode_logits(logits, "beam_search", beam_width=beam_width)[0]))


def predict_from_run(run_id: str, inputs: list[str]) -> list[str]:
    """One line per file: its greedy and its beam-search transcript."""
    from rnnbench import tracking

    front_path = tracking.download_artifact(
        run_id, FRONT_END_ARTIFACT,
        added_later="runs logged before the speech task kept its feature settings cannot transcribe new audio")
    front_end, settings, vocabulary = load_front_end(front_path)
    features = [features_of(Path(item), front_end, settings, run_id) for item in inputs]  # every file checked first
    model = tracking.load_model(run_id)
    lines = []
    for item, frames in zip(inputs, features):
        greedy, beam = transcribe(model, frames, vocabulary, int(front_end["beam_width"]))
        lines.append(f"{item}: greedy {greedy!r}, beam search {beam!r} ({len(frames)} frames)")
    return lines
