"""Retrieval of a tenant's context for alert creation.

A tenant uploads a few short documents (a glossary, its products and
competitors, its team structure) so that "our competitors" or "the enterprise
plan" mean to the model what they mean to the tenant. Per creation request the
documents are split into passages and ranked against the request with BM25
(``bm25s``, with English stop words and the Snowball stemmer, so "competitor"
finds "competitors"); the best few passages with a positive score go to the
model. The index is built per request: a tenant's documents are small (see
``serve.schemas.ApiLimits``), and an index built from the current documents can
never be stale.

Passage splitting: a document is cut into paragraphs at blank lines; a
paragraph longer than ``MAX_PASSAGE_CHARS`` is cut at line ends, then at
sentence ends, then hard, and the pieces are packed back together up to that
length. Each passage carries its document's name, which is searched too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import bm25s
import Stemmer
from bm25s.tokenization import Tokenizer

MAX_PASSAGE_CHARS = 500
TOP_K = 5

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")


@dataclass(frozen=True)
class Passage:
    """A piece of one context document."""

    doc: str
    text: str

    def render(self) -> str:
        """The passage as the model reads it: its document's name, then its text."""
        return f"[{self.doc}] {self.text}"


def split_passages(doc: str, text: str) -> list[Passage]:
    """The passages of one document, in order."""
    passages: list[Passage] = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if len(paragraph) <= MAX_PASSAGE_CHARS:
            passages.append(Passage(doc, paragraph))
            continue
        pieces = _pieces(paragraph)
        passages.extend(Passage(doc, chunk) for chunk in _pack(pieces))
    return passages


def retrieve(
    documents: Iterable[tuple[str, str]], query: str, k: int = TOP_K
) -> list[Passage]:
    """The (at most) ``k`` passages of ``documents`` that best match ``query``.

    ``documents`` are (name, text) pairs. Passages that share no term with the
    query are left out, so an unrelated request gets no context at all.
    """
    passages = [p for name, text in documents for p in split_passages(name, text)]
    if not passages or k <= 0:
        return []

    # A stemmer object is not thread-safe, and this runs in worker threads.
    tokenizer = Tokenizer(stopwords="en", stemmer=Stemmer.Stemmer("english").stemWord)
    corpus = tokenizer.tokenize(
        [f"{p.doc.replace('-', ' ').replace('_', ' ')} {p.text}" for p in passages],
        return_as="ids",
        show_progress=False,
    )
    wanted = tokenizer.tokenize(
        [query], update_vocab=False, return_as="ids", show_progress=False
    )
    known = [t for t in wanted[0] if t != _empty_token(tokenizer)]
    if not known:
        return []

    index = bm25s.BM25()
    index.index(corpus, show_progress=False)
    found, scores = index.retrieve(
        [known], k=min(k, len(passages)), show_progress=False
    )
    return [
        passages[int(i)]
        for i, score in zip(found[0], scores[0], strict=True)
        if float(score) > 0
    ]


def _empty_token(tokenizer: Tokenizer) -> int | None:
    # Words the corpus lacks map to the id of the empty string, if it has one.
    vocab: dict[str, int] = tokenizer.get_vocab_dict()
    return vocab.get("")


def _pieces(paragraph: str) -> Iterator[str]:
    """A long paragraph cut at line ends, sentence ends, then hard."""
    for line in paragraph.splitlines():
        line = line.strip()
        if len(line) <= MAX_PASSAGE_CHARS:
            if line:
                yield line
            continue
        for sentence in _SENTENCE_END.split(line):
            while len(sentence) > MAX_PASSAGE_CHARS:
                yield sentence[:MAX_PASSAGE_CHARS]
                sentence = sentence[MAX_PASSAGE_CHARS:]
            if sentence.strip():
                yield sentence.strip()


def _pack(pieces: Iterable[str]) -> Iterator[str]:
    """Consecutive pieces joined up to ``MAX_PASSAGE_CHARS``."""
    chunk = ""
    for piece in pieces:
        if chunk and len(chunk) + 1 + len(piece) > MAX_PASSAGE_CHARS:
            yield chunk
            chunk = ""
        chunk = f"{chunk}\n{piece}" if chunk else piece
    if chunk:
        yield chunk
