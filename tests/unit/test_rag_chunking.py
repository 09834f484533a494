"""Parsing and chunking of Markdown, text and HTML; deterministic chunk ids; the sample collection."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from include.rag.chunking import ChunkConfig, chunk_document
from include.rag.documents import FORMATS, list_documents, parse

DOCS = Path(__file__).resolve().parents[2] / "include" / "rag" / "docs"

MD = b"""# Runbook: demo

Intro line.

## Alert: disk full

Free some space.

```
# not a heading inside code
rm -rf /tmp/old
```

### Details

Setext headings too.

Underlined
----------

Body under a setext heading.
"""


def test_markdown_sections_keep_heading_paths_and_ignore_code_fences():
    doc = parse("runbooks/demo.md", "markdown", MD)
    assert doc.title == "Runbook: demo"
    assert [s.headings for s in doc.sections] == [
        (),
        ("Alert: disk full",),
        ("Alert: disk full", "Details"),
        ("Underlined",),
    ]
    assert "# not a heading inside code" in doc.sections[1].body


def test_every_chunk_starts_with_its_breadcrumb():
    doc = parse("runbooks/demo.md", "markdown", MD)
    chunks = chunk_document("runbooks/demo.md", doc, ChunkConfig(chunk_words=8, overlap_words=2))
    assert chunks[0].text.startswith("Runbook: demo\n\n")
    disk = [c for c in chunks if "Free some space" in c.text]
    assert disk and disk[0].text.startswith("Runbook: demo > Alert: disk full\n\n")
    assert all(c.heading == c.text.split("\n\n", 1)[0] for c in chunks)


def test_long_section_is_split_into_overlapping_windows():
    words = [f"w{i}" for i in range(100)]
    md = ("# T\n\n## S\n\n" + " ".join(words)).encode()
    chunks = chunk_document("t.md", parse("t.md", "markdown", md), ChunkConfig(chunk_words=30, overlap_words=5))
    bodies = [c.text.split("\n\n", 1)[1].split() for c in chunks]
    assert all(c.heading == "T > S" for c in chunks)
    assert all(len(b) <= 30 for b in bodies)
    for prev, nxt in zip(bodies, bodies[1:], strict=False):
        assert prev[-5:] == nxt[:5]  # exactly the configured overlap
    # every word is covered, in order, without gaps
    seen = []
    for b in bodies:
        seen.extend(w for w in b if not seen or int(w[1:]) > int(seen[-1][1:]))
    assert seen == words


def test_small_sections_are_packed_and_keep_their_own_headings():
    md = b"# T\n\n## A\n\none two\n\n## B\n\nthree four\n"
    chunks = chunk_document("t.md", parse("t.md", "markdown", md), ChunkConfig(chunk_words=50, overlap_words=5))
    assert len(chunks) == 1
    assert chunks[0].text == "T > A\n\none two\n\nB\nthree four"


def test_chunk_ids_are_deterministic_and_change_only_where_the_text_changes():
    cfg = ChunkConfig(chunk_words=20, overlap_words=4)
    base = "# T\n\n" + "\n\n".join(f"## S{i}\n\n" + " ".join(f"s{i}w{j}" for j in range(15)) for i in range(5))
    a = chunk_document("d.md", parse("d.md", "markdown", base.encode()), cfg)
    b = chunk_document("d.md", parse("d.md", "markdown", base.encode()), cfg)
    assert [c.chunk_id for c in a] == [c.chunk_id for c in b]
    assert all(re.fullmatch(r"d\.md::\d+::[0-9a-f]{16}", c.chunk_id) for c in a)
    edited = base.replace("s3w7", "CHANGED")
    c = chunk_document("d.md", parse("d.md", "markdown", edited.encode()), cfg)
    changed = {x.position for x, y in zip(a, c, strict=True) if x.chunk_id != y.chunk_id}
    assert changed == {next(x.position for x in a if "s3w7" in x.text)}
    # the same text under another path is another chunk
    assert chunk_document("e.md", parse("e.md", "markdown", base.encode()), cfg)[0].chunk_id != a[0].chunk_id


def test_html_drops_scripts_and_styles_and_uses_headings():
    html = b"""<html><head><title>Page</title><style>.x{color:red}</style></head><body>
    <nav>menu</nav><h1>Page</h1><p>Hello <b>bold</b> world.</p>
    <h2>Part &amp; parcel</h2><ul><li>one</li><li>two</li></ul><script>alert(1)</script></body></html>"""
    doc = parse("p.html", "html", html)
    assert doc.title == "Page"
    text = "\n".join(s.body for s in doc.sections)
    assert "alert" not in text and "color" not in text and "menu" not in text
    assert [s.headings for s in doc.sections] == [(), ("Part & parcel",)]
    assert "- one" in doc.sections[1].body and "Hello bold world." in doc.sections[0].body


def test_plain_text_with_underlined_headings():
    txt = b"Release notes\n=============\n\nIntro.\n\n1.0\n---\nFirst release.\n"
    doc = parse("n.txt", "text", txt)
    assert doc.title == "Release notes"
    assert [(s.headings, s.body) for s in doc.sections] == [((), "Intro."), (("1.0",), "First release.")]


def test_empty_or_odd_documents_still_give_one_chunk():
    doc = parse("empty.md", "markdown", b"")
    chunks = chunk_document("empty.md", doc, ChunkConfig())
    assert len(chunks) == 1 and chunks[0].heading == "Empty"
    assert parse("bad.md", "markdown", b"\xff\xfe# T\n").title  # undecodable bytes do not crash


def test_invalid_config_is_rejected():
    with pytest.raises(ValueError):
        ChunkConfig(chunk_words=20, overlap_words=15)
    with pytest.raises(ValueError):
        ChunkConfig(chunk_words=2)


def test_sample_collection_parses_and_chunks_within_limits():
    from airflow.sdk import ObjectStoragePath

    docs = list_documents(ObjectStoragePath("file://" + str(DOCS)))
    assert len(docs) >= 30
    assert {d.format for d in docs} == set(FORMATS.values())
    runbooks = {d.path for d in docs if d.path.startswith("runbooks/")}
    for pipeline in ("etl", "feature_engineering", "training", "drift_monitoring", "rag_ingestion"):
        assert f"runbooks/{pipeline}.md" in runbooks
    cfg = ChunkConfig()
    ids = set()
    for d in docs:
        parsed = parse(d.path, d.format, d.data)
        assert parsed.title and parsed.sections, d.path
        for c in chunk_document(d.path, parsed, cfg):
            assert c.n_words <= cfg.chunk_words, c.chunk_id
            ids.add(c.chunk_id)
    assert len(ids) > len(docs)


def test_listing_ignores_hidden_and_unsupported_files(tmp_path):
    from airflow.sdk import ObjectStoragePath

    (tmp_path / "a.md").write_text("# A\n")
    (tmp_path / "img.png").write_bytes(b"\x89PNG")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "b.md").write_text("# B\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.HTML").write_text("<h1>C</h1>")
    docs = list_documents(ObjectStoragePath("file://" + str(tmp_path)))
    assert [(d.path, d.format) for d in docs] == [("a.md", "markdown"), ("sub/c.HTML", "html")]
    with pytest.raises(FileNotFoundError, match="MLOPS_DOCS_URI"):
        list_documents(ObjectStoragePath("file://" + str(tmp_path / "missing")))
