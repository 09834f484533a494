"""Ask the documentation from the terminal.

    python -m include.rag.ask "how do I re-run a failed day?" [--k 5] [--store pgvector|weaviate]
        [--mode hybrid|vector|keyword] [--no-llm]
    make ask Q="how do I re-run a failed day?"

Prints the top chunks with their score, source document and heading. When an OpenAI connection
is configured (``MLOPS_RAG_OPENAI_CONN_ID``, default ``openai_default``, e.g. from
``AIRFLOW_CONN_OPENAI_DEFAULT``), it also asks the chat model (``MLOPS_RAG_CHAT_MODEL``) for an
answer grounded in those chunks only, citing them as [n]; otherwise nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from include.rag.search import MODES, STORES, Hit, search
from include.settings import get_settings

SYSTEM_PROMPT = (
    "You answer questions about an MLOps project using only the numbered sources provided. "
    "Cite the sources you use as [n] after the sentence they support. If the sources do not "
    "contain the answer, say that the documentation does not cover it. Be concise."
)


def build_messages(question: str, hits: list[Hit]) -> list[dict[str, str]]:
    sources = "\n\n".join(f"[{i}] ({h.doc_path} - {h.heading})\n{h.body}" for i, h in enumerate(hits, 1))
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Sources:\n\n{sources}\n\nQuestion: {question}"},
    ]


def openai_configured(conn_id: str) -> bool:
    try:
        from airflow.sdk import BaseHook

        BaseHook.get_connection(conn_id)
        return True
    except Exception:
        return False


def generate_answer(question: str, hits: list[Hit], client=None, model: str | None = None) -> str:
    """The chat model's grounded answer. ``client``: an ``openai.OpenAI`` (default: from the hook)."""
    rag = get_settings().rag
    if client is None:
        from airflow.providers.openai.hooks.openai import OpenAIHook

        client = OpenAIHook(conn_id=rag.openai_conn_id).get_conn()
    response = client.chat.completions.create(
        model=model or rag.chat_model, messages=build_messages(question, hits), temperature=0
    )
    return (response.choices[0].message.content or "").strip()


def format_hits(hits: list[Hit], width: int = 100) -> str:
    lines = []
    for i, h in enumerate(hits, 1):
        lines.append(f"[{i}] {h.score:.3f}  {h.doc_path}  ({h.heading})")
        snippet = " ".join(h.body.split())
        snippet = snippet[:400] + ("..." if len(snippet) > 400 else "")
        lines.append(textwrap.indent(textwrap.fill(snippet, width - 4), "    "))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.rag.ask", description=__doc__.split("\n")[0])
    parser.add_argument("question", nargs="+")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--store", choices=STORES, default="pgvector")
    parser.add_argument("--mode", choices=MODES, default="hybrid", help="ranker (default: hybrid)")
    parser.add_argument("--no-llm", action="store_true", help="never call the chat model")
    args = parser.parse_args(argv)
    question = " ".join(args.question)
    hits = search(question, k=args.k, store=args.store, mode=args.mode)
    if not hits:
        print("No indexed chunks found: run the rag_ingestion DAG first (make run).", file=sys.stderr)
        return 1
    print(format_hits(hits))
    conn_id = get_settings().rag.openai_conn_id
    if not args.no_llm and openai_configured(conn_id):
        print("\nAnswer:\n")
        print(textwrap.fill(generate_answer(question, hits), 100))
        print("\nSources:")
        for i, h in enumerate(hits, 1):
            print(f"  [{i}] {h.doc_path} - {h.heading}")
    elif not args.no_llm:
        print(f"\n(no '{conn_id}' connection: showing retrieved chunks only)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
