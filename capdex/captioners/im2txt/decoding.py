"""Greedy and beam decoding over any one-step function, in numpy.

Both runtimes (PyTorch and ONNX Runtime) plug their step into the same loop, so they choose
tokens the same way: same ordering, same tie-breaking (lowest token id wins).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: step(tokens (N,), state) -> (log-probabilities (N, V), new state). State arrays are batched
#: along axis 1, like an LSTM's (num_layers, N, hidden).
Step = Callable[[np.ndarray, tuple[np.ndarray, ...]], tuple[np.ndarray, tuple[np.ndarray, ...]]]


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k best scores per row, best first (equal scores: lower index
    first). Deterministic, so both runtimes choose alike from equal inputs."""
    if k == 1:
        return np.argmax(scores, axis=1)[:, None]  # argmax returns the first of equals
    if k < scores.shape[1]:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    values = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -values), axis=1)  # by score, then by index
    return np.take_along_axis(part, order, axis=1)


def beam_search(
    first_logprobs: np.ndarray,
    first_state: tuple[np.ndarray, ...],
    step: Step,
    *,
    end_id: int,
    beams: int = 1,
    max_length: int = 20,
    min_length: int = 0,
    banned: tuple[int, ...] = (),
) -> list[list[int]]:
    """Token ids (without the end token) for each of the N rows of `first_logprobs`.

    `first_logprobs` is the model's output after seeing the image; each later step is fed the
    previous token. `beams=1` is greedy decoding. Hypotheses are ranked by total
    log-probability (no length normalisation, as in Show and Tell). `min_length` forbids the end
    token before that many tokens; `banned` tokens are never chosen.
    """
    n, vocab = first_logprobs.shape
    k = max(1, min(beams, vocab))
    neg_inf = np.float32(-np.inf)

    def mask(logprobs: np.ndarray, length: int) -> np.ndarray:
        logprobs = logprobs.astype(np.float32, copy=True)
        if banned:
            logprobs[:, list(banned)] = neg_inf
        if length < min_length:
            logprobs[:, end_id] = neg_inf
        return logprobs

    first = mask(first_logprobs, 0)
    order = top_k(first, k)  # (n, k)
    scores = np.take_along_axis(first, order, axis=1)  # (n, k)
    tokens = order.astype(np.int64)
    sequences = tokens[:, :, None]  # (n, k, t)
    finished = tokens == end_id
    state = tuple(np.repeat(s, k, axis=1) for s in first_state)

    for length in range(1, max_length):
        if finished.all():
            break
        logprobs, state = step(tokens.reshape(-1), state)
        logprobs = mask(logprobs, length).reshape(n, k, vocab)
        # A finished hypothesis stays as it is: its only continuation is end, at no cost.
        logprobs[finished] = neg_inf
        logprobs[finished, end_id] = 0.0
        candidates = (scores[:, :, None] + logprobs).reshape(n, k * vocab)
        best = top_k(candidates, k)
        origin, tokens = np.divmod(best, vocab)
        scores = np.take_along_axis(candidates, best, axis=1)
        sequences = np.concatenate(
            [np.take_along_axis(sequences, origin[:, :, None], axis=1), tokens[:, :, None]], axis=2
        )
        finished = np.take_along_axis(finished, origin, axis=1) | (tokens == end_id)
        rows = (origin + np.arange(n)[:, None] * k).reshape(-1)
        state = tuple(s[:, rows] for s in state)

    results = []
    for row in range(n):
        best_beam = int(np.argmax(scores[row]))  # first of equals: beams are sorted already
        ids = sequences[row, best_beam].tolist()
        results.append(ids[: ids.index(end_id)] if end_id in ids else ids)
    return results
