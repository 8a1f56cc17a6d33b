"""Feature caching for the speech readers: utterances whose features are computed once per data, settings and
recipe, then read back from the disk cache of `rnnbench.audio`."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from rnnbench import audio, ctc
from rnnbench.tasks.speech.data import Source, Utterance


def cached_utterances(kind: str, fields: dict, skeleton: Sequence[tuple[str, str, str]],
                      compute: Callable[[int], np.ndarray]) -> list[Utterance]:
    """Utterances (id, transcript, speaker from `skeleton`) whose features `compute(i)` are read from the disk cache
    when `fields` (feature settings + data identity + recipe) were seen before."""
    features = audio.cached_feature_list(kind, fields, lambda: [compute(i) for i in range(len(skeleton))])
    return [Utterance(i, f, t, s) for (i, t, s), f in zip(skeleton, features)]


def cached_splits(kind: str, fields: dict, skeleton: Sequence[tuple[str, str, str]], chosen: dict,
                  compute: Callable[[int], np.ndarray]) -> dict:
    """{split: utterances} for the item numbers in `chosen`, computing (or reading cached) features only for those."""
    wanted = sorted({int(i) for items in chosen.values() for i in items})
    if len(wanted) < len(skeleton):  # a subset (task.limit) gets its own cache entry; the full set is seed-independent
        fields = {**fields, "subset": wanted}
    utterances = dict(zip(wanted, cached_utterances(kind, fields, [skeleton[i] for i in wanted],
                                                    lambda j: compute(wanted[j]))))
    return {k: [utterances[int(i)] for i in items] for k, items in chosen.items()}


def audio_file_source(kind: str, identity: dict, settings: audio.MfccSettings, paths: Sequence[Path],
                      skeleton: Sequence[tuple[str, str, str]], chosen: dict, vocabulary: ctc.Vocabulary) -> Source:
    """A source of one audio file per utterance (`paths[i]` is item i of `skeleton`): MFCCs cached under the data's
    `identity` and the feature settings."""
    fields = {"data": identity, "settings": settings.to_dict()}
    splits = cached_splits(kind, fields, skeleton, chosen,
                           lambda i: audio.features_from_waveform(*audio.load_audio(paths[i]), settings))
    return Source(splits, vocabulary, dict(identity))
