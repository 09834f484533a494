"""Heading-aware chunking with overlap and deterministic chunk ids.

A chunk never loses its heading: each chunk's text starts with a breadcrumb line
(``Document title > Section > Subsection``) followed by its body, and that full text is what gets
embedded. Consecutive sections are packed into one chunk while they fit (each later section keeps
its own heading line inside the chunk); a section longer than ``chunk_words`` is split into
windows of ``chunk_words`` words that overlap by ``overlap_words`` words, every window repeating
the section's breadcrumb. Whitespace inside a window is kept as written (lists, code blocks).

Chunk id: ``<doc_path>::<position>::<sha256(text)[:16]>`` -- the same document content and
settings always give the same ids; a changed chunk gets a new id, an unchanged one keeps its id
(its stored vector is reused when the model is the same).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from include.rag.documents import ParsedDocument, Section
from include.settings import get_settings

_WORD = re.compile(r"\S+\s*")
CHUNKER_VERSION = "c1"  # bump when the chunking logic changes: every document is re-chunked


@dataclass(frozen=True)
class ChunkConfig:
    chunk_words: int = 120
    overlap_words: int = 24

    def __post_init__(self) -> None:
        if self.chunk_words < 8:
            raise ValueError(f"chunk_words must be >= 8, got {self.chunk_words}")
        if not 0 <= self.overlap_words < self.chunk_words // 2 + 1:
            raise ValueError(
                f"overlap_words must be between 0 and chunk_words/2, got {self.overlap_words} for {self.chunk_words}"
            )

    @classmethod
    def from_settings(cls) -> ChunkConfig:
        rag = get_settings().rag
        return cls(rag.chunk_words, rag.chunk_overlap_words)

    @property
    def signature(self) -> str:
        return f"{CHUNKER_VERSION}:{self.chunk_words}/{self.overlap_words}"


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    doc_path: str
    position: int
    chunk_hash: str
    heading: str
    text: str
    n_words: int


def chunk_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def make_chunk_id(doc_path: str, position: int, text_hash: str) -> str:
    return f"{doc_path}::{position}::{text_hash}"


def _breadcrumb(title: str, headings: tuple[str, ...]) -> str:
    return " > ".join((title, *headings))


def _windows(words: list[str], size: int, overlap: int) -> list[str]:
    if len(words) <= size:
        return ["".join(words).strip()]
    step = size - overlap
    out = []
    start = 0
    while True:
        out.append("".join(words[start : start + size]).strip())
        if start + size >= len(words):
            return out
        start += step


def chunk_document(doc_path: str, parsed: ParsedDocument, cfg: ChunkConfig) -> list[Chunk]:
    """Pieces -> packed chunks. Deterministic for the same (parsed document, config)."""
    # 1. pieces: (breadcrumb, own heading line or None, body, words)
    pieces: list[tuple[str, str | None, str, int]] = []
    for section in parsed.sections:
        crumb = _breadcrumb(parsed.title, section.headings)
        own = section.headings[-1] if section.headings else None
        words = _WORD.findall(section.body)
        windows = _windows(words, cfg.chunk_words, cfg.overlap_words)
        for i, body in enumerate(windows):
            head = own if i == 0 else None
            # size counts the piece's own heading line too: it is written into a packed chunk
            n = len(_WORD.findall(body)) + (len(head.split()) if head else 0)
            pieces.append((crumb, head, body, n))
            if len(windows) > 1:
                # a split section is never packed with its neighbours: mark with a sentinel
                pieces[-1] = (crumb, None, body, cfg.chunk_words + 1)
    if not pieces:
        pieces.append((parsed.title, None, parsed.title, len(parsed.title.split())))

    # 2. pack consecutive small pieces while they fit
    groups: list[list[tuple[str, str | None, str, int]]] = []
    size = 0
    for piece in pieces:
        n = piece[3]
        if groups and size + n <= cfg.chunk_words and groups[-1][-1][3] <= cfg.chunk_words:
            groups[-1].append(piece)
            size += n
        else:
            groups.append([piece])
            size = n

    chunks = []
    for position, group in enumerate(groups):
        crumb = group[0][0]
        parts = [group[0][2]]
        for _, own, body, _n in group[1:]:
            parts.append(f"{own}\n{body}" if own else body)
        text = crumb + "\n\n" + "\n\n".join(parts)
        h = chunk_hash(text)
        n_words = sum(len(_WORD.findall(p)) for p in parts)
        chunks.append(Chunk(make_chunk_id(doc_path, position, h), doc_path, position, h, crumb, text, n_words))
    return chunks


def chunk_sections(doc_path: str, title: str, sections: list[Section], cfg: ChunkConfig) -> list[Chunk]:
    return chunk_document(doc_path, ParsedDocument(title, sections), cfg)
