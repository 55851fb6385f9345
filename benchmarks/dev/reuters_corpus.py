"""Write the development corpus: every Reuters-21578 article published in March 1987, as JSONL.

    .venv/bin/python benchmarks/dev/reuters_corpus.py [OUT.jsonl]   # default runs/dev/reuters-1987-03.jsonl

One record per article {id, title, text, date, source}; ids are "reuters-NEWID" as in
benchmarks/corpora.py, which the questions in this folder cite (evidence_doc). The corpus is read
from ../shared at run time and never copied into the repository (research licence). A month of
newswire holds four or five issues of every weekly story (EC sugar tenders, money supply, Fed
operations), so "this week" and "last week" pick out one of several similar articles.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from corpora import ROOT, reuters_articles  # noqa: E402

FIRST_DAY, LAST_DAY = "1987-03-01", "1987-03-31"
DEFAULT_OUT = ROOT / "runs" / "dev" / "reuters-1987-03.jsonl"


def dev_articles():
    """The corpus's articles (Article records), in NEWID order."""
    return [a for a in reuters_articles().articles if a.published and FIRST_DAY <= a.published[:10] <= LAST_DAY]


def index_dir(parent: Path, stem: str) -> Path:
    """An index folder named for the chunking the settings say (QA_CHUNK_*): indexes built with
    other chunk sizes never get mixed up with it."""
    from qa.chunk import ChunkSpec
    from qa.config import Settings

    spec = ChunkSpec.from_settings(Settings.from_env())
    return parent / f"{stem}-w{spec.target_words}-{spec.max_words}-o{spec.overlap_sentences}"


def check_chunking(store, spec, where: Path) -> None:
    """Stop with a clear message when an index was built with other chunks than the settings say."""
    if store.spec != spec:
        raise SystemExit(f"{where} was built with chunks of {store.spec}, but the settings say {spec}: set "
                         "QA_CHUNK_TARGET_WORDS, QA_CHUNK_MAX_WORDS and QA_CHUNK_OVERLAP_SENTENCES to match, "
                         "remove it to rebuild it, or name another index folder")


def write_corpus(out: Path = DEFAULT_OUT) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for a in dev_articles():
            record = {"id": a.id, "title": a.title, "text": a.text, "date": a.published, "source": a.source}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return out


if __name__ == "__main__":
    path = write_corpus(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT)
    print(path)
