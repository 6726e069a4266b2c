"""Bag-of-words vectors and token ids for short texts.

:class:`BagOfWords` learns a vocabulary from a corpus and turns texts into

* count (or 0/1) vectors, one column per vocabulary token: the input of a dense network;
* padded sequences of token ids: the input of an embedding layer.

Tokenisation is deliberately simple: optionally lowercase, then take every match of a regular
expression (by default runs of letters and digits, with inner apostrophes: ``don't``), then drop
stop words. The vocabulary is ordered by decreasing corpus count, ties alphabetically.

Token ids (for :meth:`BagOfWords.tokens_to_ids`) reserve two values:

* ``PAD_ID = 0`` pads sequences shorter than ``max_len``;
* ``UNKNOWN_ID = 1`` stands for a token not in the vocabulary;
* the vocabulary token in column ``j`` of :meth:`BagOfWords.transform` has id ``j + 2``.

An embedding table for these ids needs :attr:`BagOfWords.n_ids` rows.

Example:
  >>> bow = BagOfWords().fit(["the cat sat", "the cat ran"])
  >>> bow.vocabulary
  {'cat': 0, 'the': 1, 'ran': 2, 'sat': 3}
  >>> bow.transform(["the cat and the dog"])
  array([[1., 2., 0., 0.]], dtype=float32)
  >>> bow.tokens_to_ids(["cat dog", ""], max_len=3)
  array([[2, 1, 0],
         [0, 0, 0]], dtype=int32)
"""

from __future__ import annotations

import collections
import dataclasses
import re
from typing import Any, Iterable

import numpy as np

from nnjax._base import arrays
from nnjax._base.checks import check_positive_int
from nnjax._base.typing import PAD_ID, UNKNOWN_ID  # shared with the embedding model

__all__ = ["ENGLISH_STOP_WORDS", "PAD_ID", "UNKNOWN_ID", "BagOfWords"]

_FIRST_TOKEN_ID = 2

# A short list of very common English function words.
ENGLISH_STOP_WORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have he her him
    his how i if in into is it its me my no nor not of on or our she so than that the their them
    then there these they this those to too us was we were what when where which who whom why
    will with would you your""".split()
)


def _check_texts(texts: Any, *, allow_empty: bool) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("texts: expected a sequence of strings, got a single str; wrap it in a list: [text]")
    try:
        items = list(texts)
    except TypeError:
        raise TypeError(f"texts: expected a sequence of strings, got {type(texts).__name__}") from None
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}]: expected a str, got {type(text).__name__} {text!r}")
    if not items and not allow_empty:
        raise ValueError("texts: expected at least one text to learn a vocabulary from, got an empty corpus")
    return items


def _check_stop_words(stop_words: Any, lowercase: bool) -> frozenset[str]:
    if stop_words is None:
        return frozenset()
    if isinstance(stop_words, str):
        if stop_words != "english":
            raise ValueError(f"stop_words: expected None, 'english' or a collection of words, got {stop_words!r}")
        return ENGLISH_STOP_WORDS
    words = frozenset(stop_words)
    if not all(isinstance(w, str) for w in words):
        raise TypeError("stop_words: expected a collection of str")
    return frozenset(w.lower() for w in words) if lowercase else words


@dataclasses.dataclass(frozen=True)
class BagOfWords:
    """A vocabulary and the settings to turn texts into vectors or token ids.

    Immutable: :meth:`fit` returns a new, fitted ``BagOfWords``; use ``bow = bow.fit(texts)``.

    Attributes:
      lowercase: lowercase texts before tokenising.
      stop_words: None, ``"english"`` (:data:`ENGLISH_STOP_WORDS`) or a collection of words to drop.
      min_count: keep tokens seen at least this many times in the corpus.
      max_features: keep at most this many of the most frequent tokens (None: all).
      binary: :meth:`transform` gives 0/1 presence instead of counts.
      token_pattern: the regular expression a token matches.
      tokens: the vocabulary in column order, set by :meth:`fit` (or given, for a fixed vocabulary).
    """

    lowercase: bool = True
    stop_words: Any = None
    min_count: int = 1
    max_features: int | None = None
    binary: bool = False
    token_pattern: str = r"[^\W_]+(?:'[^\W_]+)*"
    tokens: tuple[str, ...] | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop_words", _check_stop_words(self.stop_words, self.lowercase))
        check_positive_int(self.min_count, "min_count")
        if self.max_features is not None:
            check_positive_int(self.max_features, "max_features")
        try:
            object.__setattr__(self, "_regex", re.compile(self.token_pattern))
        except re.error as err:
            raise ValueError(
                f"token_pattern: expected a regular expression, got {self.token_pattern!r} ({err})"
            ) from None
        if self.tokens is not None:
            tokens = tuple(self.tokens)
            if len(set(tokens)) != len(tokens) or not all(isinstance(t, str) for t in tokens):
                raise ValueError("tokens: expected distinct strings")
            object.__setattr__(self, "tokens", tokens)
            object.__setattr__(self, "_index", {t: i for i, t in enumerate(tokens)})

    def tokenize(self, text: str) -> list[str]:
        """The tokens of one text, in order, stop words removed.

        Example:
          >>> BagOfWords(stop_words="english").tokenize("The dog didn't bark!")
          ['dog', "didn't", 'bark']
        """
        if self.lowercase:
            text = text.lower()
        return [t for t in self._regex.findall(text) if t not in self.stop_words]

    def fit(self, texts: Iterable[str]) -> BagOfWords:
        """A copy of this ``BagOfWords`` with the vocabulary of ``texts``.

        Raises:
          ValueError: ``texts`` is empty, or no token survives ``stop_words`` and ``min_count``.
          TypeError: ``texts`` is a single string or holds something other than strings.
        """
        counts = collections.Counter()
        for text in _check_texts(texts, allow_empty=False):
            counts.update(self.tokenize(text))
        kept = sorted((t for t, c in counts.items() if c >= self.min_count), key=lambda t: (-counts[t], t))
        if not kept:
            raise ValueError(
                f"texts: no token occurs at least min_count={self.min_count} times "
                f"(outside the stop words); the vocabulary would be empty"
            )
        return dataclasses.replace(self, tokens=tuple(kept[: self.max_features]))

    @property
    def vocabulary(self) -> dict[str, int]:
        """token -> column index in :meth:`transform` (its token id is the index + 2)."""
        return dict(self._fitted_index())

    @property
    def n_ids(self) -> int:
        """The number of distinct token ids, padding and unknown included: an embedding's rows."""
        return len(self._fitted_index()) + _FIRST_TOKEN_ID

    def transform(self, texts: Iterable[str]) -> np.ndarray:
        """Count (or, with ``binary``, 0/1) vectors, float32 of shape (n_texts, vocabulary size).

        Tokens not in the vocabulary are ignored; an empty text (or one of unknown tokens only)
        gives a row of zeros.
        """
        index = self._fitted_index()
        items = _check_texts(texts, allow_empty=True)
        out = arrays.empty((len(items), len(index)), np.float32)  # aligned: read in place by a CPU device
        out.fill(0.0)
        for row, text in enumerate(items):
            for token in self.tokenize(text):
                column = index.get(token)
                if column is not None:
                    out[row, column] = 1.0 if self.binary else out[row, column] + 1.0
        return out

    def tokens_to_ids(self, texts: Iterable[str], max_len: int) -> np.ndarray:
        """Token ids, int32 of shape (n_texts, max_len), for an embedding layer.

        Each row holds the ids of the text's first ``max_len`` tokens (longer texts are
        truncated), then ``PAD_ID = 0`` up to ``max_len``. A token not in the vocabulary becomes
        ``UNKNOWN_ID = 1``; vocabulary token ``j`` (its column in :meth:`transform`) has id ``j + 2``.
        """
        index = self._fitted_index()
        max_len = check_positive_int(max_len, "max_len")
        items = _check_texts(texts, allow_empty=True)
        out = np.full((len(items), max_len), PAD_ID, dtype=np.int32)
        for row, text in enumerate(items):
            ids = [index.get(t, UNKNOWN_ID - _FIRST_TOKEN_ID) + _FIRST_TOKEN_ID for t in self.tokenize(text)]
            ids = ids[:max_len]
            out[row, : len(ids)] = ids
        return out

    def _fitted_index(self) -> dict[str, int]:
        if self.tokens is None:
            raise ValueError("BagOfWords: not fitted; fit returns a new, fitted copy: bow = bow.fit(texts)")
        return self._index
