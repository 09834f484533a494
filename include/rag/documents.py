"""The document source: list, hash and parse Markdown, plain text and HTML.

The source is a folder addressed through Airflow's ``ObjectStoragePath``
(``get_settings().storage.docs_uri``: ``file://`` by default, ``s3://`` with a storage connection).
A document is identified by its path under that folder ('/'-separated) and versioned by the
sha256 of its bytes: a content change, whatever the file's timestamps say, makes it "changed".

Parsing produces sections (heading path + body text) that the chunker packs into chunks:
Markdown ATX and setext headings (not inside fenced code), HTML h1-h6 (stdlib ``html.parser``:
script/style dropped, block elements become paragraphs), plain text with setext-underlined
headings. The document title is the first level-1 heading (HTML: <title> or <h1>), else the
file name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from include.settings import get_settings

FORMATS = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".html": "html", ".htm": "html"}


@dataclass(frozen=True)
class SourceDocument:
    path: str  # relative, '/'-separated
    uri: str  # full ObjectStoragePath URI
    content_hash: str
    size_bytes: int
    format: str
    data: bytes = field(repr=False, compare=False)


@dataclass(frozen=True)
class Section:
    headings: tuple[str, ...]  # outermost first, without the document title
    body: str


@dataclass(frozen=True)
class ParsedDocument:
    title: str
    sections: list[Section]


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def docs_root():
    """ObjectStoragePath of the configured document folder."""
    storage = get_settings().storage
    return storage.path(storage.docs_uri)


def list_documents(root=None) -> list[SourceDocument]:
    """Every supported document under ``root`` (recursively), read and hashed, sorted by path.

    Files of other types and hidden files/folders are ignored. Reading every file is what makes
    the hash trustworthy; the sample collection is small and S3 listings carry no sha256.
    """
    root = root if root is not None else docs_root()
    if not root.exists():
        raise FileNotFoundError(f"document source {root} does not exist (MLOPS_DOCS_URI)")
    docs = []
    for p in root.rglob("*"):
        rel = p.relative_to(root).as_posix()
        fmt = FORMATS.get(p.suffix.lower())
        if fmt is None or any(part.startswith(".") for part in rel.split("/")) or not p.is_file():
            continue
        data = p.read_bytes()
        docs.append(SourceDocument(rel, str(p), content_hash(data), len(data), fmt, data))
    docs.sort(key=lambda d: d.path)
    return docs


def decode(data: bytes) -> str:
    text = data.decode("utf-8-sig", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse(path: str, fmt: str, data: bytes) -> ParsedDocument:
    text = decode(data)
    if fmt == "markdown":
        return _parse_markdown(path, text)
    if fmt == "html":
        return _parse_html(path, text)
    if fmt == "text":
        return _parse_text(path, text)
    raise ValueError(f"{path}: unsupported document format {fmt!r}")


def _fallback_title(path: str) -> str:
    stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return re.sub(r"[-_]+", " ", stem).strip().capitalize() or path


_ATX = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^[ \t]{0,3}(```|~~~)")
_SETEXT = re.compile(r"^[ \t]{0,3}(=+|-+)[ \t]*$")


def _sections_from_lines(lines: list[tuple[int | None, str]]) -> tuple[str | None, list[Section]]:
    """(level or None, text) lines -> (title, sections). Level-1 heading = title when first."""
    title: str | None = None
    stack: list[tuple[int, str]] = []
    sections: list[Section] = []
    body: list[str] = []

    def flush() -> None:
        text = "\n".join(body).strip()
        if text:
            sections.append(Section(tuple(h for _, h in stack), text))
        body.clear()

    for level, text in lines:
        if level is None:
            body.append(text)
            continue
        flush()
        if level == 1 and title is None and not sections and not stack:
            title = text
            continue
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, text))
    flush()
    return title, sections


def _parse_markdown(path: str, text: str) -> ParsedDocument:
    raw = text.split("\n")
    lines: list[tuple[int | None, str]] = []
    in_fence = False
    i = 0
    while i < len(raw):
        line = raw[i]
        if _FENCE.match(line):
            in_fence = not in_fence
            lines.append((None, line))
        elif not in_fence and (m := _ATX.match(line)):
            lines.append((len(m.group(1)), m.group(2).strip()))
        elif (
            not in_fence
            and line.strip()
            and i + 1 < len(raw)
            and _SETEXT.match(raw[i + 1])
            and (i == 0 or not raw[i - 1].strip())
        ):
            lines.append((1 if raw[i + 1].strip().startswith("=") else 2, line.strip()))
            i += 1
        else:
            lines.append((None, line))
        i += 1
    title, sections = _sections_from_lines(lines)
    return ParsedDocument(title or _fallback_title(path), sections)


def _parse_text(path: str, text: str) -> ParsedDocument:
    raw = text.split("\n")
    lines: list[tuple[int | None, str]] = []
    i = 0
    while i < len(raw):
        line = raw[i]
        if line.strip() and i + 1 < len(raw) and _SETEXT.match(raw[i + 1]) and len(raw[i + 1].strip()) >= 3:
            lines.append((1 if raw[i + 1].strip().startswith("=") else 2, line.strip()))
            i += 2
            continue
        lines.append((None, line))
        i += 1
    title, sections = _sections_from_lines(lines)
    if title is None:
        first = next((ln.strip() for ln in raw if ln.strip()), "")
        title = first if 0 < len(first) <= 80 else _fallback_title(path)
    return ParsedDocument(title, sections)


class _HtmlToLines(HTMLParser):
    BLOCK = {"p", "div", "li", "tr", "pre", "blockquote", "section", "article", "dt", "dd", "br", "table", "ul", "ol"}
    SKIP = {"script", "style", "head", "nav", "footer", "template"}
    HEADINGS = {f"h{n}": n for n in range(1, 7)}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[int | None, str]] = []
        self.title: str | None = None
        self._buf: list[str] = []
        self._heading: int | None = None
        self._skip = 0
        self._in_title = False
        self._pre = 0

    def _flush(self) -> None:
        text = "".join(self._buf)
        self._buf.clear()
        if self._heading is not None:
            text = " ".join(text.split())
            if text:
                self.lines.append((self._heading, text))
            return
        if self._pre:
            if text.strip("\n"):
                self.lines.append((None, text.strip("\n")))
            return
        text = " ".join(text.split())
        if text:
            self.lines.append((None, text))
            self.lines.append((None, ""))

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self._in_title = True
        elif tag in self.SKIP:
            self._skip += 1
        elif tag in self.HEADINGS:
            self._flush()
            self._heading = self.HEADINGS[tag]
        elif tag in self.BLOCK:
            self._flush()
            if tag == "pre":
                self._pre += 1
            if tag == "li":
                self._buf.append("- ")

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        elif tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self.HEADINGS:
            self._flush()
            self._heading = None
        elif tag in self.BLOCK:
            self._flush()
            if tag == "pre":
                self._pre = max(0, self._pre - 1)

    def handle_data(self, data):
        if self._in_title:
            self.title = ((self.title or "") + data).strip()
        elif not self._skip:
            self._buf.append(data)

    def close(self):
        super().close()
        self._flush()


def _parse_html(path: str, text: str) -> ParsedDocument:
    parser = _HtmlToLines()
    parser.feed(text)
    parser.close()
    lines = parser.lines
    h1_title, sections = _sections_from_lines(lines)
    title = parser.title or h1_title or _fallback_title(path)
    if parser.title and h1_title and h1_title != parser.title:
        # <title> wins; keep the page's h1 as the top heading of what follows it
        sections = [Section((h1_title, *s.headings), s.body) for s in sections]
    return ParsedDocument(title, sections)
