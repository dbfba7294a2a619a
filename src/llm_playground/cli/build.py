"""`llmp data collect`, `llmp tokenizer train`, `llmp data prepare`: the build flow up to training."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from llm_playground.workspace import Workspace

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
data_app = typer.Typer(help="Build a training corpus and turn it into token arrays.", no_args_is_help=True)
tokenizer_app = typer.Typer(help="Train a tokenizer on the corpus.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]


@contextlib.contextmanager
def _progress(label: str) -> Iterator[Progress]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        bar.add_task(label, total=None)
        yield bar


@data_app.command("collect")
def collect_command(
    paths: Annotated[Optional[list[Path]], typer.Argument(  # noqa: UP045 (typer needs Optional)
        help="files or folders for --source files (.txt, .md, .jsonl with a \"text\" field)", show_default=False)]
    = None,
    source: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--source", "-s", help="shakespeare (default), files or wikipedia; repeat to combine")] = None,
    lang: Annotated[str, typer.Option(help="Wikipedia language code", rich_help_panel="Wikipedia")] = "en",
    titles: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--titles", "--title", help="page titles (repeat, or separate with |)", rich_help_panel="Wikipedia")] = None,
    random: Annotated[int, typer.Option(help="this many random articles", rich_help_panel="Wikipedia")] = 0,
    category: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="the articles of a category", rich_help_panel="Wikipedia")] = None,
    limit: Annotated[int, typer.Option(help="at most this many pages of a category",
                                       rich_help_panel="Wikipedia")] = 100,
    api_url: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="MediaWiki api.php URL ({lang} is replaced; default https://{lang}.wikipedia.org/w/api.php, "
             "or LLMP_WIKIPEDIA_API)", rich_help_panel="Wikipedia")] = None,
    rate_limit: Annotated[float, typer.Option(help="requests per second", rich_help_panel="Wikipedia")] = 5.0,
    min_chars: Annotated[int, typer.Option(help="drop documents shorter than this")] = 20,
    json_output: JsonOption = False,
) -> None:
    """Gather documents into data/raw/corpus.txt (blank-line separated) and data/raw/manifest.json."""
    from llm_playground.data import CollectRequest, WikipediaRequest, collect

    split_titles = [t.strip() for entry in titles or [] for t in entry.split("|") if t.strip()]
    request = CollectRequest(
        sources=source or ["shakespeare"], paths=paths or [], min_chars=min_chars,
        wikipedia=WikipediaRequest(lang=lang, titles=split_titles, random=random, category=category, limit=limit,
                                   api_url=api_url, requests_per_second=rate_limit))
    started = time.perf_counter()
    with _progress("collecting") as bar:
        def progress(name: str, done: int, total: int) -> None:
            bar.update(bar.task_ids[0], description=f"collecting {name[:40]}", completed=done, total=total)

        manifest = collect(Workspace.current(), request, progress)
    if json_output:
        out.out(json.dumps(manifest, indent=2, ensure_ascii=False))
        return
    for skipped in manifest["skipped"]:
        err.print(f"[yellow]skipped[/] {skipped['path']}: {skipped['reason']}")
    for entry in manifest["sources"]:
        extra = f" ({entry['fetched']} fetched, {entry['resumed']} already saved)" if "fetched" in entry else ""
        out.print(f"{entry['source']}: {entry['documents']} documents{extra}")
    removed = manifest["cleaning"]
    out.print(f"wrote {Workspace.current().relative(Workspace.current().corpus_path)}: {manifest['documents']} "
              f"documents, {manifest['characters']:,} characters, {manifest['bytes']:,} bytes "
              f"(removed {removed['empty']} empty, {removed['short']} short, {removed['duplicate']} duplicate) "
              f"in {time.perf_counter() - started:.1f} s")
    out.print(f"sha256 {manifest['sha256']}")


@tokenizer_app.command("train")
def tokenizer_train_command(
    vocab_size: Annotated[int, typer.Option(help="pieces in the vocabulary (byte fallback and controls included)")]
    = 4096,
    model_type: Annotated[str, typer.Option(help="bpe or unigram")] = "bpe",
    special_token: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        help="a token never split (e.g. <|user|>); repeatable")] = None,
) -> None:
    """Train a SentencePiece tokenizer on the corpus: models/tokenizer.model and .vocab."""
    from llm_playground.data import train_tokenizer

    workspace = Workspace.current()
    with _progress("training the tokenizer"):
        trained = train_tokenizer(workspace, vocab_size, model_type, special_token or [])
    tokenizer = trained.tokenizer
    out.print(f"wrote {workspace.relative(tokenizer.path)} and tokenizer.vocab: vocab {tokenizer.vocab_size} "
              f"({model_type}) in {trained.seconds:.1f} s")
    ids = tokenizer.encode(trained.sample)
    out.print(f"sample: {trained.sample!r}")
    out.print(f"  {len(ids)} tokens: " + " | ".join(tokenizer.token_text(i) for i in ids))
    out.print(f"  ids: {ids}")


@data_app.command("prepare")
def prepare_command(
    val_fraction: Annotated[float, typer.Option(help="the last fraction of tokens kept for validation")] = 0.1,
    threads: Annotated[Optional[int], typer.Option(  # noqa: UP045
        help="encoding threads (default: all cores)", min=1)] = None,
    json_output: JsonOption = False,
) -> None:
    """Encode the corpus with the trained tokenizer into data/processed/{train,val}.bin and meta.json."""
    from llm_playground.data import prepare
    from llm_playground.data.prepared import check_val_fraction

    check_val_fraction(val_fraction)
    workspace = Workspace.current()
    started = time.perf_counter()
    with _progress("encoding (MB)") as bar:
        def progress(done: int, total: int) -> None:
            bar.update(bar.task_ids[0], completed=done // 1_000_000, total=max(total // 1_000_000, 1))

        meta = prepare(workspace, val_fraction, threads, progress)
    if json_output:
        out.out(json.dumps(meta, indent=2))
        return
    out.print(f"wrote {workspace.relative(workspace.train_bin)}: {meta['train_tokens']:,} tokens, "
              f"{workspace.relative(workspace.val_bin)}: {meta['val_tokens']:,} tokens ({meta['dtype']}, vocab "
              f"{meta['vocab_size']}, EOS {meta['eos_id']} after each document) in "
              f"{time.perf_counter() - started:.1f} s")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
    app.add_typer(tokenizer_app, name="tokenizer")
