"""`llmp kb` (add, remove, list, status, search) and `llmp ask` (grounded answers with citations)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from llm_playground.cli.options import DEFAULT_CHOICE, ModelChoice, with_model_options, with_sampling_options
from llm_playground.errors import InputError
from llm_playground.generate import SamplingParams
from llm_playground.knowledge import KnowledgeBase, open_kb
from llm_playground.knowledge.store import MODES

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
kb_app = typer.Typer(help="The knowledge base: add documents, search them (BM25, dense, hybrid).", no_args_is_help=True)
KbOption = Annotated[Path | None, typer.Option("--kb", help="the knowledge base file [default: knowledge.sqlite3 in "
                                             "the workspace]")]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]


def _open(path: Path | None) -> KnowledgeBase:
    return open_kb(path) if path is not None else open_kb()


def _read_jsonl(path: Path, key: str) -> list[dict]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}", "give a UTF-8 JSON Lines file") from exc
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number} is not JSON ({exc.msg})", f'write one {{"{key}": "…"}} a line') from exc
        if not isinstance(record, dict) or not isinstance(record.get(key), str):
            raise InputError(f'{path}:{number} has no "{key}" string', f'write one {{"{key}": "…"}} a line')
        records.append(record)
    return records


@kb_app.command("add")
def add_command(
    paths: Annotated[list[Path], typer.Argument(help="files or folders (.txt .md .html .pdf .jsonl)")],
    kb: KbOption = None,
    chunk_tokens: Annotated[int | None, typer.Option(help="tokens a chunk (first add only) [default: 256]")] = None,
    overlap: Annotated[int | None, typer.Option(help="tokens shared by neighbouring chunks [default: 32]")] = None,
    json_output: JsonOption = False,
) -> None:
    """Add files: unchanged ones are skipped (sha256), changed ones replaced; each file commits on its own."""
    base = _open(kb)
    base.configure(chunk_tokens, overlap)
    files = base.expand(paths)  # missing paths fail here, before any model loads
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[speed]}"), TimeElapsedColumn())
    # Refreshed by hand, not by rich's thread: no Python thread beside the embedding forwards.
    with Progress(*columns, console=err, transient=True, auto_refresh=False,
                  disable=not err.is_terminal or json_output) as bar:
        task = bar.add_task("files", total=len(files), speed="")
        state = {"before": 0, "current": 0, "started": 0.0}

        def progress(event: str, path: str, done: int, total: int) -> None:
            if event == "file":
                state["before"] += state["current"]
                state["current"] = 0
                state["started"] = state["started"] or time.perf_counter()
                bar.update(task, description=escape(path[-40:]), advance=1)
            else:
                state["current"] = done
                chunks = state["before"] + done
                rate = chunks / max(time.perf_counter() - state["started"], 1e-9)
                bar.update(task, speed=f"{chunks} chunks, {rate:.1f} chunks/s")
            bar.refresh()

        report = base.add(files, progress=progress)
    if json_output:
        out.out(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
        return
    for path, why in report.skipped:
        err.print(f"[yellow]warning:[/] skipped {escape(path)}: {escape(why)}")
    out.print(f"added {len(report.added)}, replaced {len(report.replaced)}, unchanged {len(report.unchanged)}, "
              f"skipped {len(report.skipped)} files; {report.chunks} chunks in {report.seconds:.1f} s "
              f"({report.chunks_per_s:.1f} chunks/s, CPU {report.cpu_seconds:.1f} s)")


@kb_app.command("remove")
def remove_command(path: Annotated[Path, typer.Argument(help="a file or folder that was added")],
                   kb: KbOption = None) -> None:
    """Remove a file (or every file under a folder) and its chunks."""
    removed = _open(kb).remove(path)
    out.print(f"removed {len(removed)} file{'s' if len(removed) != 1 else ''}: {escape(', '.join(removed))}")


@kb_app.command("list")
def list_command(kb: KbOption = None, json_output: JsonOption = False) -> None:
    """The files in the knowledge base."""
    files = _open(kb).files()
    if json_output:
        out.out(json.dumps([vars(f) for f in files], ensure_ascii=False, indent=2))
        return
    table = Table("file", "title", "chunks", "bytes", "sha256")
    for f in files:
        table.add_row(escape(f.path), escape(f.title[:40]), str(f.chunks), str(f.bytes), f.sha256[:12])
    out.print(table if files else "the knowledge base is empty: add files with `llmp kb add PATH`")


@kb_app.command("status")
def status_command(kb: KbOption = None, json_output: JsonOption = False) -> None:
    """Files, chunks, the embedding model and the size on disk."""
    status = _open(kb).status()
    if json_output:
        out.out(json.dumps(status, indent=2))
        return
    for key, value in status.items():
        out.print(f"{key.replace('_', ' ')}: {escape(str(value))}")


def _print_hits(query: str, hits: list) -> None:
    if not hits:
        out.print(f"no results for {escape(query)!r}")
        return
    for rank, hit in enumerate(hits, 1):
        dense = f"{hit.dense:.3f}" if hit.dense is not None else "-"
        bm25 = f"{hit.bm25:.2f}" if hit.bm25 is not None else "-"
        out.print(f"[bold]{rank}. {escape(hit.source)}[/] [{hit.start}:{hit.end}] {escape(hit.title[:50])}  "
                  f"[dim]score {hit.score:.4f} · dense {dense} (#{hit.dense_rank or '-'}) · "
                  f"bm25 {bm25} (#{hit.bm25_rank or '-'})[/]")
        text = " ".join(hit.text.split())
        out.print(f"   {escape(text[:300])}{'…' if len(text) > 300 else ''}")


@kb_app.command("search")
def search_command(
    query: Annotated[str | None, typer.Argument(help="what to search for (or --input)")] = None,
    k: Annotated[int, typer.Option("--k", help="how many chunks")] = 5,
    mode: Annotated[str, typer.Option(help=f"{' | '.join(MODES)}")] = "hybrid",
    input_path: Annotated[Path | None, typer.Option("--input", help='JSON Lines of {"query": …}; writes JSON Lines')]
    = None,
    kb: KbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Ranked chunks with their source, span and each retriever's score."""
    if (query is None) == (input_path is None):
        raise InputError("give a QUERY or --input FILE.jsonl (one of them)", 'e.g. llmp kb search "what is X"')
    base = _open(kb)
    if input_path is not None:
        for number, record in enumerate(_read_jsonl(input_path, "query"), 1):
            wanted, filters = record.get("k", k), record.get("filters")
            if not isinstance(wanted, int) or isinstance(wanted, bool):
                raise InputError(f'{input_path}: query {number}\'s "k" is {wanted!r}, not a whole number',
                                 'write "k": 5, or leave it out')
            if filters is not None and not (isinstance(filters, dict) and all(
                    isinstance(v, str | int | float) for v in filters.values())):
                raise InputError(f'{input_path}: query {number}\'s "filters" is not an object of values',
                                 'write "filters": {"source": "*.md"}, or leave it out')
            hits = base.search(record["query"], k=wanted, mode=record.get("mode", mode), filters=filters)
            out.out(json.dumps({"query": record["query"], "hits": [h.to_dict() for h in hits]}, ensure_ascii=False))
        return
    assert query is not None
    hits = base.search(query, k=k, mode=mode)  # type: ignore[arg-type]
    if json_output:
        out.out(json.dumps({"query": query, "mode": mode, "hits": [h.to_dict() for h in hits]}, ensure_ascii=False,
                           indent=2))
        return
    _print_hits(query, hits)


def _print_answer(result) -> None:  # noqa: ANN001 (knowledge.answer.Answer)
    out.print(escape(result.answer))
    if result.citations:
        out.print("")
        for citation in result.citations:
            hit = citation.hit
            page = f", page {hit.metadata['page']}" if "page" in hit.metadata else ""
            out.print(f"[{citation.n}] {escape(hit.source)}{page} [{hit.start}:{hit.end}] {escape(hit.title[:60])}")
    if result.abstained:
        why = "nothing relevant retrieved" if result.reason == "retrieval" else "the model found no answer in them"
        err.print(f"[dim](abstained: {why})[/]")
    if result.invalid_citations:
        err.print(f"[dim](removed citations of sources that were not given: {result.invalid_citations})[/]")


@with_sampling_options
@with_model_options
def ask_command(
    question: Annotated[str | None, typer.Argument(help="the question (or --input)")] = None,
    sampling: SamplingParams = SamplingParams(),  # noqa: B008 (replaced by the sampling options)
    choice: ModelChoice = DEFAULT_CHOICE,
    k: Annotated[int, typer.Option("--k", help="how many chunks to retrieve")] = 4,
    extractive: Annotated[bool, typer.Option(help="quote the retrieved sentence closest to the question "
                                             "(no language model)")] = False,
    input_path: Annotated[Path | None, typer.Option("--input", help='JSON Lines of {"question": …}; writes JSON '
                                                  "Lines")] = None,
    kb: KbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Answer from the knowledge base with numbered citations, or say the documents do not say."""
    from llm_playground.knowledge.answer import ask

    if (question is None) == (input_path is None):
        raise InputError("give a QUESTION or --input FILE.jsonl (one of them)", 'e.g. llmp ask "what is X?"')
    records = _read_jsonl(input_path, "question") if input_path is not None else [{"question": question or ""}]
    base = _open(kb)
    if base.store.chunk_count() == 0:
        raise InputError("the knowledge base is empty", "add documents first: llmp kb add PATH")
    model = None if extractive else choice.load()
    for record in records:
        result = ask(base, record["question"], model, sampling, k=k, extractive=extractive)
        if input_path is not None:
            out.out(json.dumps(result.to_dict(), ensure_ascii=False))
        elif json_output:
            out.out(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        else:
            _print_answer(result)


def register(app: typer.Typer) -> None:
    app.add_typer(kb_app, name="kb")
    app.command("ask")(ask_command)
