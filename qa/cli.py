"""Command line: a thin shell over the library. User mistakes become one-line errors, not tracebacks."""

from __future__ import annotations

import json
import os
import shutil
import sys
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, Iterator

import click

from .chunk import ChunkSpec
from .config import Settings
from .errors import QAError
from .interrupts import interrupts_deferred
from .wording import plural, shown_path

# Exit statuses (docs/ingest.md). Click itself exits 2 on a usage error.
EXIT_ERROR = 1  # nothing was indexed, or an error
EXIT_PARTIAL = 3  # indexed, but some named path did not exist or some items were skipped


class WholeHelpCommand(click.Command):
    """Lists itself under its group by its help's whole first sentence (click cuts it with '...')."""

    def get_short_help_str(self, limit: int = 45) -> str:
        if self.short_help:
            return self.short_help
        first = " ".join((self.help or "").split("\n\n")[0].split())
        end = first.find(". ")
        return first[: end + 1] if end >= 0 else first


class WholeHelpGroup(WholeHelpCommand, click.Group):
    command_class = WholeHelpCommand
    group_class = type  # subgroups are WholeHelpGroups too


STRICT_OPTION = click.option(
    "--strict", is_flag=True,
    help="Treat any skipped item (missing path, unsupported or unreadable file) as an error: exit 1, index unchanged.",
)
EXIT_STATUS_HELP = (
    "Exit status: 0 when everything named was read; 1 when nothing was indexed (or on an error); 3 when some "
    "named path did not exist or some items were skipped (the rest is indexed; --strict makes that an error)."
)

INDEX_OPTION = click.option(
    "--index", "index_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Index directory [default: $QA_INDEX_DIR or ./index].",
)


def _iso_day(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A YYYY-MM-DD option; the error names the option as typed (--date-from)."""
    if value is None:
        return None
    from datetime import date

    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date as YYYY-MM-DD", ctx, param) from None


def _settings(**overrides) -> Settings:
    try:
        return Settings.from_env(**overrides)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def user_errors(func):
    """Turn QAError (bad input, damaged index, missing model) into `Error: ...` and exit status 1."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except QAError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("Interrupted; the index on disk is unchanged.", err=True)
            sys.exit(130)

    return wrapper


@click.group(cls=WholeHelpGroup)
@click.version_option(package_name="news-qa")
def cli() -> None:
    """Ask questions about your news articles and get cited, extractive answers."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# ---- index -------------------------------------------------------------------------------------


@cli.group()
def index() -> None:
    """Build and update the article index."""


FOLLOW_SYMLINKS = click.option(
    "--follow-symlinks", is_flag=True, default=None,
    help="Follow symbolic links that lead out of an input folder (not followed by default).",
)


@index.command("build", epilog=EXIT_STATUS_HELP)
@click.argument("paths", nargs=-1, required=True)
@INDEX_OPTION
@click.option("--replace", is_flag=True, help="Replace the index already in the folder (it stays available to `qa index rollback`).")
@FOLLOW_SYMLINKS
@STRICT_OPTION
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Embed in this process, or with Ray Data actors (extra .[ray]; a cluster via RAY_ADDRESS).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Ray: embedding actors (one model each) [default: the CPUs Ray sees].")
@click.option("--ray-address", envvar="RAY_ADDRESS", default=None,
              help="Ray: the cluster to run on [default: $RAY_ADDRESS, else a local Ray with --workers CPUs].")
@user_errors
def index_build(paths: tuple[str, ...], index_dir: Path | None, replace: bool, follow_symlinks: bool | None,
                strict: bool, quiet: bool, engine: str, workers: int | None, ray_address: str | None) -> None:
    """Build a fresh index from files, folders, feeds and URLs.

    Reads .txt .md .html .json .jsonl .csv .rss .atom .xml files (folders recursively) and http(s)://
    pages and feeds. The index goes to --index/QA_INDEX_DIR, or to the Milvus store QA_STORE names
    (docs/scaling.md).
    """
    from .embed import Embedder
    from .index import build_store
    from .index.base import chunk_count, location, writing

    settings = _settings(index_dir=index_dir, follow_symlinks=follow_symlinks)
    embedder = Embedder.from_settings(settings)
    if engine == "ray":
        from .distributed import RayEmbedder

        embedder = RayEmbedder(embedder, workers=workers, address=ray_address)
    try:
        # The lock first: a second writer fails at once, not after ingesting everything.
        with _removed_unless_built(settings.index_dir), interrupts_deferred(), writing(settings), \
                _ingesting(paths, settings, strict) as ingested:
            store, report = build_store(
                settings, ingested, embedder, ChunkSpec.from_settings(settings),
                progress=not quiet, dedup=_dedup(settings), replace=replace, lock_held=True,
            )
    finally:
        if engine == "ray":
            embedder.shutdown()
    click.echo(
        f"Indexed {plural(len(store.articles), 'article')} ({plural(len(report.unchanged), 'duplicate')} merged, "
        f"{plural(len(report.collapsed), 'near-duplicate')} collapsed), "
        f"{plural(chunk_count(store), 'chunk')}, skipped {len(ingested.skipped)} → {_shown_store(settings)}"
    )
    _exit_partial(ingested.skipped)


@index.command("add", epilog=EXIT_STATUS_HELP)
@click.argument("paths", nargs=-1, required=True)
@INDEX_OPTION
@FOLLOW_SYMLINKS
@STRICT_OPTION
@click.option("--quiet", is_flag=True, help="No progress bar.")
@user_errors
def index_add(paths: tuple[str, ...], index_dir: Path | None, follow_symlinks: bool | None, strict: bool,
              quiet: bool) -> None:
    """Add articles from files, folders, feeds and URLs to the index.

    Changed articles (same id) are replaced, identical ones left alone, near-duplicates of indexed
    articles collapsed into them.
    """
    from .embed import Embedder
    from .index import update_store
    from .index.base import chunk_count, writing

    settings = _settings(index_dir=index_dir, follow_symlinks=follow_symlinks)
    embedder = Embedder.from_settings(settings)
    with interrupts_deferred(), writing(settings), _ingesting(paths, settings, strict) as ingested:
        store, report = update_store(
            settings, embedder, ChunkSpec.from_settings(settings), add=ingested, progress=not quiet,
            dedup=_dedup(settings), lock_held=True,
        )
    if not ingested.count:
        raise click.ClickException("nothing to add: no readable article in the given paths; the index is unchanged")
    click.echo(
        f"Added {len(report.added)}, updated {len(report.updated)}, unchanged {len(report.unchanged)}, "
        f"collapsed {len(report.collapsed)}, "
        f"skipped {len(ingested.skipped)}; {plural(report.chunks_added, 'new chunk')}; "
        f"index now {plural(len(store.articles), 'article')}, {plural(chunk_count(store), 'chunk')}"
    )
    _exit_partial(ingested.skipped)


@contextmanager
def _removed_unless_built(index_dir: Path) -> Iterator[None]:
    """A failed first build (--strict, Ctrl-C, a full disk) removes the folder it created for its lock,
    so a failure leaves nothing behind."""
    from .index import index_exists

    existed = index_dir.exists()
    try:
        yield
    except BaseException:
        if not existed and not index_exists(index_dir):
            shutil.rmtree(index_dir, ignore_errors=True)  # best effort: the original error is what matters
        raise


@contextmanager
def _ingesting(paths: tuple[str, ...], settings: Settings, strict: bool = False) -> Iterator[Any]:
    """A stream of the articles in `paths` (qa.ingest.IngestStream); what it skipped is printed at the
    end, even on failure. Under --strict a skip fails the stream at its end (so nothing is saved)."""
    from .ingest import IngestLimits, IngestStream

    with _fetcher(settings) as fetcher:
        stream = IngestStream(paths, fetcher, IngestLimits.from_settings(settings), strict=strict)
        try:
            yield stream
        finally:
            _print_skipped(stream.skipped, stream.warnings)


@index.command("watch")
@click.argument("feeds", nargs=-1, required=True)
@INDEX_OPTION
@click.option("--every", "every", type=click.FloatRange(min=0), default=15.0, show_default=True,
              help="Minutes between the starts of two rounds.")
@click.option("--rounds", type=click.IntRange(min=1), default=None, help="Stop after N rounds [default: never].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@user_errors
def index_watch(feeds: tuple[str, ...], index_dir: Path | None, every: float, rounds: int | None, quiet: bool) -> None:
    """Poll FEEDs (URLs or feed files) every --every minutes: add new entries, re-index changed ones.

    Prints one line per round. Ctrl-C between rounds stops cleanly; re-running is safe (no duplicates).
    """
    from .embed import Embedder
    from .index.watch import watch
    from .ingest import IngestLimits

    settings = _settings(index_dir=index_dir)
    _files_only(settings, "qa index watch keeps its state beside a QA_INDEX_DIR index; with QA_STORE, "
                "run `qa index add FEED...` on a schedule instead (one writer at a time)")
    embedder = Embedder.from_settings(settings)

    def on_round(report) -> None:
        _print_skipped(report.skipped, report.warnings)
        click.echo(report.summary(), err=bool(report.error))

    with _fetcher(settings) as fetcher:
        reports = watch(
            feeds, settings.index_dir, embedder, ChunkSpec.from_settings(settings), fetcher, every * 60, rounds,
            dedup=_dedup(settings), on_round=on_round, progress=not quiet, limits=IngestLimits.from_settings(settings),
            keep=settings.keep_generations,
        )
    if rounds is None or len(reports) < rounds:
        click.echo(f"Stopped after {plural(len(reports), 'round')}.")
    if reports and reports[-1].error:
        sys.exit(1)


MILVUS_HISTORY = ("generations, history, rollback and repair belong to a QA_INDEX_DIR index; a Milvus store "
                  "keeps one live generation (docs/scaling.md)")


def _shown_store(settings: Settings) -> str:
    """Where the index is, for messages: the folder as typed, or the Milvus store."""
    from .index.base import location

    loc = location(settings)
    return shown_path(settings.index_dir) if loc.kind == "files" else str(loc)


def _files_only(settings: Settings, message: str) -> None:
    """Commands that work on the files in QA_INDEX_DIR refuse a QA_STORE with a one-line hint."""
    from .index.base import location

    if location(settings).kind != "files":
        raise QAError(message)


def _fetcher(settings: Settings):
    from .ingest.fetch import Fetcher

    return Fetcher.from_settings(settings)


def _dedup(settings: Settings):
    from .ingest.dedup import DedupSpec

    try:
        return DedupSpec.from_settings(settings)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@index.command("remove")
@click.argument("article_ids", nargs=-1, required=True)
@INDEX_OPTION
@user_errors
def index_remove(article_ids: tuple[str, ...], index_dir: Path | None) -> None:
    """Remove articles by id (see `qa index stats --ids`).

    Exit status: 0 when every id was removed; 3 when some were not in the index; 1 when none was.
    """
    from .embed import Embedder
    from .errors import IndexNotFound
    from .index import list_generations, store_exists, update_store
    from .index.base import chunk_count, location

    settings = _settings(index_dir=index_dir)
    loc = location(settings)
    if not store_exists(settings) and not (loc.kind == "files" and list_generations(settings.index_dir)):
        raise IndexNotFound(f"no index in {_shown_store(settings)}")
    embedder = Embedder.from_settings(settings)
    store, report = update_store(settings, embedder, ChunkSpec.from_settings(settings), remove=article_ids)
    for missing in report.missing:
        click.echo(f"not in the index: {missing}", err=True)
    click.echo(
        f"Removed {len(report.removed)}; index now {plural(len(store.articles), 'article')}, "
        f"{plural(chunk_count(store), 'chunk')}"
    )
    if report.missing:
        sys.exit(EXIT_PARTIAL if report.removed else EXIT_ERROR)


@index.command("upgrade")
@INDEX_OPTION
@click.option("--requote", is_flag=True, help="Extract every article's quotes again, even where the index has them.")
@user_errors
def index_upgrade(index_dir: Path | None, requote: bool) -> None:
    """Add what newer versions store to an older index (quotes) without re-embedding anything."""
    from .index import upgrade_store

    settings = _settings(index_dir=index_dir)
    store, extracted = upgrade_store(settings, everything=requote)
    quotes = plural(store.stats()["quotes"], "quote")
    if extracted:
        click.echo(f"Extracted {quotes} from {plural(extracted, 'article')} → {_shown_store(settings)}")
    else:
        click.echo(f"Index {_shown_store(settings)} is up to date ({quotes}).")


@index.command("stats")
@INDEX_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--ids", is_flag=True, help="Also list article ids and titles.")
@user_errors
def index_stats(index_dir: Path | None, as_json: bool, ids: bool) -> None:
    """Show what the index holds."""
    from .index import open_store
    from .index.base import location

    settings = _settings(index_dir=index_dir)
    store = open_store(settings)
    stats = store.stats() | ({"index_dir": str(settings.index_dir)} if location(settings).kind == "files" else {})
    if ids:
        stats["ids"] = [{"id": a.id, "title": a.title} for a in store.articles.values()]
    if as_json:
        click.echo(json.dumps(stats, indent=2, ensure_ascii=False))
        return
    for key, value in stats.items():
        if key == "ids":
            for row in value:
                click.echo(f"  {row['id']}\t{row['title']}")
        else:
            click.echo(f"{key}: {', '.join(value) if isinstance(value, list) else value}")


@index.command("history")
@INDEX_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def index_history(index_dir: Path | None, as_json: bool) -> None:
    """List the index generations kept on disk, newest first (each file's checksum verified)."""
    from .index import history

    settings = _settings(index_dir=index_dir)
    _files_only(settings, MILVUS_HISTORY)
    rows = history(settings.index_dir)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in rows], indent=2))
        return
    if not rows:
        raise click.ClickException(f"no index generations in {settings.index_dir}")
    for r in rows:
        mark = "*" if r.current else " "
        state = "ok" if r.problem is None else f"DAMAGED: {r.problem}"
        click.echo(f"{mark} {r.name}  {r.updated_at or '-'}  {r.articles if r.articles is not None else '?'} articles, "
                   f"{r.chunks if r.chunks is not None else '?'} chunks  {state}")
    click.echo("(* = current; `qa index rollback GEN` switches to another)")


@index.command("rollback")
@click.argument("generation", required=False)
@INDEX_OPTION
@user_errors
def index_rollback(generation: str | None, index_dir: Path | None) -> None:
    """Switch the index back to GENERATION (default: the one the current generation replaced)."""
    from .index import IndexStore, rollback

    settings = _settings(index_dir=index_dir)
    _files_only(settings, MILVUS_HISTORY)
    old, new = rollback(settings.index_dir, generation)
    store = IndexStore.load(settings.index_dir, generation=new)
    undo = f"; {old} is kept: `qa index rollback {old}` undoes this" if old else ""
    click.echo(f"Index now at {new} ({len(store.articles)} articles){undo}")


@index.command("repair")
@INDEX_OPTION
@user_errors
def index_repair(index_dir: Path | None) -> None:
    """Point CURRENT at the newest complete, verified generation when it is missing or damaged."""
    from .index import IndexStore, repair

    settings = _settings(index_dir=index_dir)
    _files_only(settings, MILVUS_HISTORY)
    old, new = repair(settings.index_dir)
    store = IndexStore.load(settings.index_dir, generation=new)
    if old == new:
        click.echo(f"Nothing to repair: {new} loads ({len(store.articles)} articles)")
    else:
        click.echo(f"CURRENT now points at {new} ({len(store.articles)} articles); it was {old or 'missing'}")


# ---- ask ---------------------------------------------------------------------------------------


@cli.command()
@click.argument("question")
@INDEX_OPTION
@click.option("--k", type=click.IntRange(1, 50), default=None, help="Passages to read [default: 5].")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.option("--source", default=None, help="Only articles from this source.")
@click.option("--date-from", default=None, callback=_iso_day, metavar="YYYY-MM-DD",
              help="Only articles published on or after this day.")
@click.option("--date-to", default=None, callback=_iso_day, metavar="YYYY-MM-DD",
              help="Only articles published on or before this day.")
@click.option("--as-of", "as_of", default=None,
              help="Ask as of this day (YYYY-MM-DD or ISO date-time): \"this week\" is that day's week, and "
                   "articles published later are left out, and newer ones lean ahead [default: now].")
@user_errors
def ask(question: str, index_dir: Path | None, k: int | None, as_json: bool, source, date_from, date_to,
        as_of: str | None) -> None:
    """Answer QUESTION from the indexed articles, with citations."""
    from .answer import QAService
    from .retrieve import Filters
    from .timeframe import describe, parse_as_of

    settings = _settings(index_dir=index_dir)
    if date_from and date_to and date_from > date_to:
        raise click.UsageError(f"--date-from {date_from} is after --date-to {date_to}")
    filters = Filters(source, date_from, date_to)
    try:
        as_of_day = parse_as_of(as_of)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    service = QAService(settings)
    service.validate(question)  # fail fast, before loading models
    answer = service.ask(question, k=k, filters=filters, as_of=as_of_day)
    if as_json:
        click.echo(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return
    if answer.time_window:
        click.echo(f"[{describe(answer.time_window)}]")
    if not answer.found:
        click.echo("Not found in the indexed articles.")
        return
    click.echo(f"{answer.answer}  (confidence {answer.score:.2f})")
    for n, c in enumerate(answer.citations, 1):
        before = c.passage[: c.answer_start]
        marked = click.style(c.passage[c.answer_start : c.answer_end], bold=True, underline=True)
        meta = ", ".join(x for x in (c.source, c.date, c.url) if x)
        click.echo(f"\n[{n}] {c.title}" + (f" ({meta})" if meta else ""))
        click.echo("    " + " ".join((before + marked + c.passage[c.answer_end :]).split()))
    if answer.alternatives:
        click.echo("\nOther candidates: " + "; ".join(f"{a.answer} ({a.score:.2f})" for a in answer.alternatives))


@cli.command("quotes")
@click.option("--speaker", required=True, help='Who said it: "Sanders", "Sarah Sanders", "Ms Sanders", "the minister".')
@click.option("--about", default=None, help="Rank by how well the quote matches this topic.")
@INDEX_OPTION
@click.option("--source", default=None, help="Only articles from this source.")
@click.option("--date-from", default=None, help="Only articles published on or after (YYYY-MM-DD).")
@click.option("--date-to", default=None, help="Only articles published on or before (YYYY-MM-DD).")
@click.option("--limit", type=click.IntRange(1, 200), default=10, show_default=True, help="Most quotes to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def quotes(speaker: str, about: str | None, index_dir: Path | None, source, date_from, date_to, limit: int,
           as_json: bool) -> None:
    """List what SPEAKER said in the indexed articles, best match to --about first (else newest first)."""
    from .answer import QAService
    from .retrieve import Filters

    settings = _settings(index_dir=index_dir)
    try:
        filters = Filters(source, date_from, date_to)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if not speaker.strip() or len(speaker) > 200 or (about and len(about) > settings.max_question_chars):
        raise click.BadParameter("--speaker must be 1-200 characters and --about at most QA_MAX_QUESTION_CHARS")
    found = QAService(settings).speakers.search(speaker, about, filters, limit)
    if as_json:
        click.echo(json.dumps({"speaker": speaker, "about": about, "quotes": [r.to_dict() for r in found]},
                              ensure_ascii=False, indent=2))
        return
    if not found:
        click.echo(f"No quotes by {speaker} in the indexed articles.")
        return
    for n, r in enumerate(found, 1):
        q = r.quote
        meta = ", ".join(x for x in (r.article.source, (r.article.published or "")[:10]) if x)
        who = q.speaker + (f", {q.role}" if q.role else "")
        words = " ".join(r.text.split())
        click.echo(f"{n}. “{words}”" if q.kind == "direct" else f"{n}. {words} (reported)")
        click.echo(f"   — {who} ({q.cue}) · {r.article.title}" + (f" ({meta})" if meta else "")
                   + (f" · match {r.score:.2f}" if about else ""))


@cli.command()
@INDEX_OPTION
@click.option("--host", default=None, help="Interface to listen on [default: $QA_HOST or 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [default: $QA_PORT or 7860].")
@user_errors
def serve(index_dir: Path | None, host: str | None, port: int | None) -> None:
    """Serve the chat UI (/), the embeddable chat (/embed/) and the HTTP API (/api/ask, /docs) on the index."""
    from .serve.api import serve

    serve(_settings(index_dir=index_dir, host=host, port=port))


def _echo_result(result: dict[str, Any], as_json: bool, header: dict[str, Any]) -> None:
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    rows = header | result
    width = max(len(k) for k in rows)
    for key, value in rows.items():
        click.echo(f"{key:<{width}}  {'-' if value is None else value}")


@cli.group("eval")
def eval_group() -> None:
    """Measure answer quality: the reader alone, or the whole service on a corpus."""


@eval_group.command("reader")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
@click.option("--unrelated", is_flag=True,
              help="Pair each question with another example's context; report the no-answer rate.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N examples.")
@click.option("--reader", "reader_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Reader model directory [default: $QA_READER_DIR or the shipped reader].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@user_errors
def eval_reader(file: Path, as_json: bool, unrelated: bool, limit: int | None, reader_dir: Path | None,
                quiet: bool) -> None:
    """SQuAD EM/F1 of the reader on FILE (SQuAD-format JSONL), best span per question."""
    from .evaluate import evaluate_reader, load_jsonl
    from .read import Reader

    settings = _settings(reader_dir=reader_dir)
    examples = load_jsonl(file, required=("question", "context", "answers"))
    reader = Reader.from_settings(settings)
    # --limit keeps the first N questions; unrelated contexts still come from the whole file.
    result = evaluate_reader(reader, examples[:limit], unrelated=unrelated, progress=not quiet, pool=examples)
    _echo_result(result, as_json, {"file": str(file), "reader": str(settings.reader_dir)})


@eval_group.command("e2e")
@click.option("--corpus", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSONL articles {id, title, text, date, source, url}, indexed in a temporary folder.")
@click.option("--index", "index_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Use this index (built with `qa index build`) instead of indexing --corpus.")
@click.option("--questions", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="JSONL questions {id, question, answers: [str], evidence_doc?, date?}; date = as-of day.")
@click.option("--unanswerable", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSONL questions whose answer is not in the corpus: report the share answered found=true.")
@click.option("--k", type=click.IntRange(1, 50), default=None, help="Passages to read [default: 5].")
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
@click.option("--reader", "reader_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Reader model directory [default: $QA_READER_DIR or the shipped reader].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@user_errors
def eval_e2e(corpus: Path | None, index_dir: Path | None, questions: Path, unanswerable: Path | None, k: int | None,
             as_json: bool, reader_dir: Path | None, quiet: bool) -> None:
    """Score the full ask path on a corpus (EM/F1, found rate, recall@k; with --unanswerable, the
    share of unanswerable questions answered anyway)."""
    from .evaluate import evaluate_e2e, evaluate_index, load_jsonl

    if (corpus is None) == (index_dir is None):
        raise click.UsageError("give either --corpus FILE or --index DIR")
    settings = _settings(reader_dir=reader_dir)
    asked = load_jsonl(questions, required=("question",))
    others = load_jsonl(unanswerable, required=("question",)) if unanswerable else []
    if index_dir is not None:
        result = evaluate_index(index_dir, asked, settings, k=k, progress=not quiet, unanswerable=others)
        source = {"index": str(index_dir)}
    else:
        result = evaluate_e2e(load_jsonl(corpus), asked, settings, k=k, progress=not quiet, unanswerable=others)
        source = {"corpus": str(corpus)}
    header = source | {"questions": str(questions)} | ({"unanswerable": str(unanswerable)} if unanswerable else {})
    _echo_result(result, as_json, header)


@eval_group.command("quotes")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@INDEX_OPTION
@click.option("--k", type=click.IntRange(1, 50), default=None, help="Passages to read [default: 5].")
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
@click.option("--misses", "show_misses", is_flag=True, help="Also list the questions that missed (stderr).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@user_errors
def eval_quotes(file: Path, index_dir: Path | None, k: int | None, as_json: bool, show_misses: bool,
                quiet: bool) -> None:
    """Score speaker questions on the index: FILE is JSONL {id, question, answers: [accepted quotes],
    evidence_doc?, history?}. Prints the share answered with an accepted quote (token F1 >= 0.6, or
    containing it while at most twice as long), mean F1 and the share citing the evidence article."""
    from .answer import QAService
    from .evaluate import evaluate_quotes, load_jsonl

    settings = _settings(index_dir=index_dir)
    questions = load_jsonl(file, required=("question", "answers"))
    misses: list = []
    result = evaluate_quotes(QAService(settings), questions, k=k, progress=not quiet, misses=misses)
    if show_misses:
        for miss in misses:
            click.echo(json.dumps(miss, ensure_ascii=False), err=True)
    _echo_result(result, as_json, {"file": str(file), "index": str(settings.index_dir)})


def _exit_partial(skipped) -> None:
    if skipped:
        click.echo(f"{plural(len(skipped), 'item')} skipped: see above; exit status {EXIT_PARTIAL}", err=True)
        sys.exit(EXIT_PARTIAL)


def _print_skipped(skipped, warnings=()) -> None:
    for item in skipped:
        click.echo(f"skipped {item.origin}: {item.reason}", err=True)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


def main() -> None:
    cli(prog_name="qa")


if __name__ == "__main__":
    main()
