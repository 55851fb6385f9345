"""Chunk: articles → sentence-aware, overlapping chunks with exact character offsets.

Sentences come from blingfire (fast, offset-preserving); paragraphs (blank lines) are split
first because headlines and datelines often lack final punctuation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Iterator

from .records import Article, Chunk

PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class ChunkSpec:
    target_words: int = 150
    max_words: int = 200
    overlap_sentences: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.target_words <= self.max_words:
            raise ValueError("chunk sizes must satisfy 0 < target_words <= max_words")
        if self.overlap_sentences < 0:
            raise ValueError("overlap_sentences must be >= 0")

    @classmethod
    def from_settings(cls, settings) -> ChunkSpec:
        return cls(settings.chunk_target_words, settings.chunk_max_words, settings.chunk_overlap_sentences)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence; a sentence longer than a chunk is cut later, by words."""
    import blingfire

    spans: list[tuple[int, int]] = []
    for para_start, para_end in _paragraphs(text):
        para = text[para_start:para_end]
        _, offsets = blingfire.text_to_sentences_and_offsets(para)
        for start, end in offsets:
            if para[start:end].strip():
                spans.append((para_start + start, para_start + end))
    return spans


def chunk_article(article: Article, spec: ChunkSpec, first_id: int = 0) -> list[Chunk]:
    text = article.text
    units = list(_bounded_units(text, sentence_spans(text), spec.max_words))
    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j, words = i, 0
        while j < len(units) and (words < spec.target_words) and words + units[j][2] <= spec.max_words:
            words += units[j][2]
            j += 1
        j = max(j, i + 1)
        start, end = units[i][0], units[j - 1][1]
        chunks.append(Chunk(first_id + len(chunks), article.id, text[start:end], start, end))
        if j >= len(units):
            break
        # Overlap: the next chunk repeats the last sentences, unless that would not advance.
        i = max(j - spec.overlap_sentences, i + 1)
    return chunks


def chunk_articles(articles: Iterable[Article], spec: ChunkSpec, first_id: int = 0) -> list[Chunk]:
    chunks: list[Chunk] = []
    for article in articles:
        chunks.extend(chunk_article(article, spec, first_id + len(chunks)))
    return chunks


def _paragraphs(text: str) -> Iterator[tuple[int, int]]:
    start = 0
    for m in PARAGRAPH_BREAK.finditer(text):
        if text[start : m.start()].strip():
            yield start, m.start()
        start = m.end()
    if text[start:].strip():
        yield start, len(text)


def _bounded_units(text: str, spans: list[tuple[int, int]], max_words: int) -> Iterator[tuple[int, int, int]]:
    """(start, end, words) per sentence; sentences over max_words are cut into word runs."""
    for start, end in spans:
        words = [m.span() for m in WORD.finditer(text, start, end)]
        if not words:
            continue
        for k in range(0, len(words), max_words):
            run = words[k : k + max_words]
            yield run[0][0], run[-1][1], len(run)
