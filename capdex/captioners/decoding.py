"""Greedy and beam search over a step function, token-identical to transformers' `generate()`.

Importing transformers' modeling code costs seconds of start-up, so captioners decode with this
small loop instead. It mirrors transformers 5.25 `generate(do_sample=False)` with one EOS id,
`min_new_tokens`/`max_new_tokens`, length_penalty 1.0, early_stopping False and one returned
sequence per prompt (tests/captioners/test_decoding.py compares the two token for token).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch

# transformers' stand-in for "minus infinity" in beam scores; sums with it must round alike.
_NEG = -1.0e9


class StepModel(Protocol):
    def __call__(self, tokens: torch.Tensor, reorder: torch.Tensor | None) -> torch.Tensor:
        """Next-token logits (rows, vocab), float, for each row after feeding `tokens` (rows, t):
        the whole prompt on the first call, then one new token per row. `reorder` (rows,) long:
        which previous row each row now continues (beam search reorders its cache; None on the
        first call and in greedy search)."""
        ...


def generate(
    step: StepModel,
    prompt: torch.Tensor,
    *,
    num_beams: int,
    max_new_tokens: int,
    min_new_tokens: int,
    eos_token_id: int,
    pad_token_id: int,
) -> torch.Tensor:
    """(batch, prompt_len + new) token ids, prompt included, as transformers' generate returns
    them (finished rows padded with pad_token_id)."""
    if num_beams < 1 or max_new_tokens < 1:
        raise ValueError(
            f"num_beams and max_new_tokens must be >= 1: {num_beams}, {max_new_tokens}"
        )
    if num_beams == 1:
        return _greedy(step, prompt, max_new_tokens, min_new_tokens, eos_token_id, pad_token_id)
    return _beam_search(
        step, prompt, num_beams, max_new_tokens, min_new_tokens, eos_token_id, pad_token_id
    )


def _greedy(
    step: StepModel, prompt: torch.Tensor, max_new: int, min_new: int, eos: int, pad: int
) -> torch.Tensor:
    """Argmax token per row; rows that produced EOS get pad_token_id until every row has."""
    import torch

    tokens, fed = prompt, prompt
    unfinished = torch.ones(prompt.shape[0], dtype=torch.bool, device=prompt.device)
    for n_new in range(max_new):
        logits = step(fed, None).float()
        if n_new < min_new:  # EOS is not allowed before min_new_tokens
            logits = logits.clone()  # the step's own tensor stays as it was
            logits[:, eos] = -torch.inf
        next_tokens = torch.where(unfinished, logits.argmax(dim=-1), pad)
        tokens = torch.cat([tokens, next_tokens[:, None]], dim=1)
        unfinished &= next_tokens != eos
        if not unfinished.any():
            break
        fed = next_tokens[:, None]
    return tokens


def _beam_search(
    step: StepModel,
    prompt: torch.Tensor,
    num_beams: int,
    max_new: int,
    min_new: int,
    eos: int,
    pad: int,
) -> torch.Tensor:
    """transformers' beam search: keep the `num_beams` best running beams per item by summed
    log-prob, and its `num_beams` best finished hypotheses by summed log-prob / length."""
    import torch

    batch, prompt_len = prompt.shape
    k = num_beams
    device = prompt.device
    # transformers fills unused positions with `pad_token_id or eos`: EOS when the pad id is 0.
    fill = pad if pad != 0 else eos
    max_len = prompt_len + max_new
    item_offset = torch.arange(batch, device=device)[:, None] * k  # beam b -> row item * k + b

    running = prompt.repeat_interleave(k, dim=0).view(batch, k, prompt_len)
    # All beams start identical: only beam 0 may be extended at first, or they would all agree.
    running_scores = torch.zeros(batch, k, device=device)
    running_scores[:, 1:] = _NEG
    finished = torch.full((batch, k, max_len), fill, dtype=torch.long, device=device)
    finished_scores = torch.full((batch, k), _NEG, device=device)
    finished_len = torch.zeros(batch, k, dtype=torch.long, device=device)  # new tokens in each
    is_finished = torch.zeros(batch, k, dtype=torch.bool, device=device)
    improvable = torch.ones(batch, 1, dtype=torch.bool, device=device)  # item not done yet
    new_in_top_k = torch.arange(2 * k, device=device) < k

    fed, reorder = running.view(batch * k, prompt_len), None
    for n_new in range(1, max_new + 1):  # n_new: generated length once this step's token is added
        log_probs = torch.log_softmax(step(fed, reorder).float(), dim=-1)
        if n_new <= min_new:  # EOS is not allowed before min_new_tokens
            log_probs[:, eos] = -torch.inf
        vocab = log_probs.shape[-1]
        # 2k candidates per item, so at least k of them do not end in EOS.
        totals = (log_probs.view(batch, k, vocab) + running_scores[:, :, None]).view(batch, -1)
        cand_scores, cand_index = torch.topk(totals, 2 * k)
        cand_beam, cand_token = cand_index // vocab, cand_index % vocab
        cand_seqs = torch.cat([_take(running, cand_beam), cand_token[:, :, None]], dim=2)
        ends = (cand_token == eos) | (prompt_len + n_new >= max_len)

        # The k best candidates that go on become the running beams.
        go_on_scores = cand_scores + ends.float() * _NEG
        keep = torch.topk(go_on_scores, k).indices
        running = _take(cand_seqs, keep)
        running_scores = _take(go_on_scores, keep)
        reorder = (_take(cand_beam, keep) + item_offset).view(-1)
        fed = running[:, :, -1].reshape(-1, 1)

        # Candidates among the top k that ended join the finished hypotheses, scored by the
        # mean log-prob per new token (length_penalty 1.0), unless their item is done.
        new_scores = cand_scores / float(n_new)
        new_scores = new_scores + (~improvable).float() * _NEG
        new_finished = ends & new_in_top_k
        new_scores = new_scores + (~new_finished).float() * _NEG
        padded = torch.full((batch, 2 * k, max_len), fill, dtype=torch.long, device=device)
        padded[:, :, : prompt_len + n_new] = cand_seqs
        merged_scores = torch.cat([finished_scores, new_scores], dim=1)
        best = torch.topk(merged_scores, k).indices
        finished_scores = _take(merged_scores, best)
        finished = _take(torch.cat([finished, padded], dim=1), best)
        lengths = torch.full_like(new_scores, n_new, dtype=torch.long)
        finished_len = _take(torch.cat([finished_len, lengths], dim=1), best)
        is_finished = _take(torch.cat([is_finished, new_finished], dim=1), best)

        # An item is done once it holds k finished hypotheses and its best running beam, scored
        # at its current length, is no better than the worst of them (transformers' heuristic).
        worst = torch.where(is_finished, finished_scores.min(dim=1, keepdim=True).values, _NEG)
        improvable &= (running_scores[:, :1] / float(n_new) > worst).any(dim=1, keepdim=True)
        if not improvable.any() or ends.all():
            break

    # The best hypothesis per item; the batch is as long as its longest one.
    return finished[:, 0, : prompt_len + int(finished_len[:, 0].max())]


def _take(tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Select along the beam dimension (dim 1) of (batch, beams, ...) by index (batch, n)."""
    while index.dim() < tensor.dim():
        index = index.unsqueeze(-1)
    return tensor.take_along_dim(index, dim=1)
