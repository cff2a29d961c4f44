"""capdex's own greedy/beam search gives the same tokens as transformers' `generate()`.

Both decode a tiny random BLIP text decoder (cross-attending to random "image" states); its
weights are scaled up so that rows differ, and its EOS logit is biased so that some rows and
beams finish early while others run to max_new_tokens.
"""

from __future__ import annotations

import ast
import functools
import itertools
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from capdex.captioners import decoding  # noqa: E402 - after the skips

VOCAB, HIDDEN, ENCODER_LEN = 60, 32, 5
BOS, EOS = 1, 2
# (seed, bias added to the EOS logit): unbiased models rarely stop, biased ones often do.
MODELS = [(0, 0.0), (1, 4.0), (2, 4.0)]

pytestmark = pytest.mark.filterwarnings("ignore:Unfeasible length constraints:UserWarning")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: torch's intra-op threads only wait on each other (30x slower on 2 busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@functools.cache
def _model(seed: int, eos_bias: float):
    config = transformers.BlipTextConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        encoder_hidden_size=HIDDEN,
        max_position_embeddings=32,
        bos_token_id=BOS,
        eos_token_id=EOS,
        pad_token_id=0,
        sep_token_id=EOS,
    )
    from transformers.models.blip.modeling_blip_text import BlipTextLMHeadModel

    torch.manual_seed(seed)
    model = BlipTextLMHeadModel(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:  # initializer_range 0.02 gives near-uniform, image-blind logits
                param.normal_(0.0, 0.3)
        model.cls.predictions.bias[EOS] += eos_bias
    return model


class _HfStep:
    """The StepModel a BLIP captioner builds: the HF decoder with its key/value cache."""

    def __init__(self, model, encoder_states) -> None:
        self.model, self.encoder_states, self.cache = model, encoder_states, None
        self.calls: list[tuple[tuple[int, ...], bool]] = []

    def __call__(self, tokens, reorder):
        self.calls.append((tuple(tokens.shape), reorder is not None))
        if reorder is not None:
            self.cache.reorder_cache(reorder)
        out = self.model(
            input_ids=tokens,
            encoder_hidden_states=self.encoder_states,
            cache=self.cache,
            use_cache=True,
        )
        self.cache = out.cache
        return out.logits[:, -1]


@functools.cache
def _run(model_key, num_beams, batch, min_new, max_new, prompt_len, pad=0):
    """(transformers' output, ours, prompt, forward passes) for one setting; cached so tests can
    share runs."""
    model = _model(*model_key)
    gen = torch.Generator().manual_seed(model_key[0] * 1000 + batch * 10 + prompt_len)
    encoder_states = torch.randn(batch, ENCODER_LEN, HIDDEN, generator=gen)
    prompt = torch.cat(
        [
            torch.full((batch, 1), BOS),
            torch.randint(4, VOCAB, (batch, prompt_len - 1), generator=gen),
        ],
        dim=1,
    )
    settings = {
        "num_beams": num_beams,
        "max_new_tokens": max_new,
        "min_new_tokens": min_new,
        "eos_token_id": EOS,
        "pad_token_id": pad,
    }
    forwards = []
    hook = model.register_forward_hook(
        lambda module, args, kwargs, out: forwards.append(kwargs["input_ids"].shape),
        with_kwargs=True,
    )
    try:
        with torch.no_grad():
            expected = model.generate(
                input_ids=prompt, encoder_hidden_states=encoder_states, do_sample=False, **settings
            )
    finally:
        hook.remove()
    step = _HfStep(model, encoder_states.repeat_interleave(num_beams, dim=0))
    with torch.no_grad():
        ours = decoding.generate(step, prompt, **settings)
    # Same forward passes as transformers (so it stops as early), the prompt first, then a token.
    rows = batch * num_beams
    assert [tuple(shape) for shape in forwards] == [shape for shape, _ in step.calls]
    assert step.calls[0] == ((rows, prompt_len), False)
    assert all(
        shape == (rows, 1) and reordered == (num_beams > 1) for shape, reordered in step.calls[1:]
    )
    return expected, ours, prompt, len(step.calls)


@pytest.mark.parametrize("prompt_len", [1, 3])
@pytest.mark.parametrize("max_new", [4, 12])
@pytest.mark.parametrize("min_new", [0, 5])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("num_beams", [1, 3, 4])
@pytest.mark.parametrize("model_key", MODELS)
def test_same_tokens_as_transformers(model_key, num_beams, batch, min_new, max_new, prompt_len):
    expected, ours, prompt, _ = _run(model_key, num_beams, batch, min_new, max_new, prompt_len)
    assert ours.dtype == torch.long and torch.equal(ours[:, :prompt_len], prompt)
    assert ours.shape == expected.shape and torch.equal(ours, expected)
    generated = expected[:, prompt_len:]
    if min_new:  # no EOS before min_new_tokens
        assert not (generated[:, : min(min_new, max_new)] == EOS).any()


def _ends_early(row):
    """Whether a generated row has an EOS before its last position (the rest is padding)."""
    hits = (row == EOS).nonzero()
    return len(hits) > 0 and int(hits[0]) < len(row) - 1


def _grid(num_beams):
    for model_key, min_new, prompt_len in itertools.product(MODELS, [0, 5], [1, 3]):
        expected, ours, _, steps = _run(model_key, num_beams, 3, min_new, 12, prompt_len)
        assert torch.equal(ours, expected)
        yield expected[:, prompt_len:], steps


@pytest.mark.parametrize("num_beams", [1, 3, 4])
def test_rows_finish_early_in_some_cases(num_beams):
    """The grid is not vacuous: rows stop at EOS while others go on, and decoding stops early."""
    mixed = stopped_early = 0
    for generated, steps in _grid(num_beams):
        early = [_ends_early(row) for row in generated]
        mixed += any(early) and not all(early)
        stopped_early += steps < 12
    assert mixed > 0 and stopped_early > 0


@pytest.mark.parametrize("pad", [0, 3])
@pytest.mark.parametrize("num_beams", [1, 3])
def test_padding_after_eos(num_beams, pad):
    """Greedy pads finished rows with pad_token_id; beam search pads short hypotheses with it
    too, except that transformers uses EOS instead when pad_token_id is 0 (`pad or eos`)."""
    fill = EOS if num_beams > 1 and pad == 0 else pad
    padded = 0
    for model_key, prompt_len in itertools.product(MODELS[1:], [1, 3]):
        expected, ours, _, _ = _run(model_key, num_beams, 3, 0, 12, prompt_len, pad)
        assert torch.equal(ours, expected)
        for row in expected[:, prompt_len:]:
            if _ends_early(row):
                end = int((row == EOS).nonzero()[0])
                assert (row[end + 1 :] == fill).all()
                padded += 1
    assert padded > 0


def test_imports_only_torch_and_stdlib():
    """The module exists to avoid importing transformers; it must not import it, even lazily."""
    tree = ast.parse(Path(decoding.__file__).read_text())
    names = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert names <= {"__future__", "typing", "torch"}


def test_rejects_nonsense_settings():
    with pytest.raises(ValueError):
        decoding.generate(
            lambda tokens, reorder: torch.zeros(1, VOCAB),
            torch.ones(1, 1, dtype=torch.long),
            num_beams=0,
            max_new_tokens=4,
            min_new_tokens=0,
            eos_token_id=EOS,
            pad_token_id=0,
        )
