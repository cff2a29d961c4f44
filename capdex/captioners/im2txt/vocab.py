"""LibrePhotos' `vocab.pkl`, read without running arbitrary pickled code."""

from __future__ import annotations

import copyreg
import pickle
from pathlib import Path

from capdex.captioners.base import CaptionerError

SPECIAL_TOKENS = ("<pad>", "<start>", "<end>", "<unk>")


class Vocabulary:
    """Word <-> index maps; the attribute names match the pickled class (build_vocab.py)."""

    def __init__(self) -> None:
        self.word2idx: dict[str, int] = {}
        self.idx2word: dict[int, str] = {}
        self.idx = 0

    def add_word(self, word: str) -> None:
        if word not in self.word2idx:
            self.word2idx[word] = self.idx
            self.idx2word[self.idx] = word
            self.idx += 1

    def __len__(self) -> int:
        return len(self.word2idx)

    def id(self, word: str) -> int:
        return self.word2idx[word]

    def words(self, ids: list[int]) -> list[str]:
        return [self.idx2word.get(i, "<unk>") for i in ids]


class _VocabUnpickler(pickle.Unpickler):
    """Resolves only the classes a pickled Vocabulary needs.

    The class was pickled from wherever build_vocab.py ran (`__main__`, `build_vocab`,
    `api.im2txt.build_vocab`), so any module's `Vocabulary` maps to ours. Protocol 0/1 pickles
    also name copyreg's reconstructor and `object`. Everything else is refused.
    """

    _ALLOWED = {
        ("copyreg", "_reconstructor"): copyreg._reconstructor,  # type: ignore[attr-defined]  # typeshed omits it
        ("builtins", "object"): object,
    }

    def find_class(self, module: str, name: str) -> object:
        if name == "Vocabulary":
            return Vocabulary
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: a vocab.pkl holds only a Vocabulary"
            ) from None


def load_vocab(path: Path) -> Vocabulary:
    try:
        with path.open("rb") as f:
            vocab = _VocabUnpickler(f).load()
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError) as exc:
        raise CaptionerError(f"cannot read the im2txt vocabulary {path}: {exc}") from exc
    if not isinstance(vocab, Vocabulary) or not isinstance(getattr(vocab, "idx2word", None), dict):
        raise CaptionerError(f"{path} is not an im2txt Vocabulary")
    # Some pickles restore only a subset of attributes; rebuild what the others imply.
    if not getattr(vocab, "word2idx", None):
        vocab.word2idx = {w: i for i, w in vocab.idx2word.items()}
    vocab.idx = len(vocab.idx2word)
    if "<end>" not in vocab.word2idx:
        raise CaptionerError(f"{path} has no <end> token; it is not an im2txt vocabulary")
    return vocab

