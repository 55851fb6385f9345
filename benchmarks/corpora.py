"""The research corpora in ../shared/data/corpora, read in place as Article records (never copied
into the repository). Shared by the benchmarks, the dev-set and training-data scripts.

    bbc_articles()      BBC News, 2,225 .txt articles (first line = title). HELD OUT: benchmark on
                        it, never generate training data or dev sets from it, never tune on it.
    reuters_articles()  Reuters-21578 newswire (SGML, Latin-1): each <REUTERS> document's TITLE,
                        BODY and DATE; documents without a BODY are skipped. Ids are "reuters-NEWID".
"""

from __future__ import annotations

import html
import re
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
CORPORA = ROOT.parent / "shared" / "data" / "corpora"
BBC_DIR = CORPORA / "bbc_news" / "bbc"
REUTERS_DIR = CORPORA / "reuters21578" / "data"
TOPICS = ("business", "entertainment", "politics", "sport", "tech")

DOC = re.compile(r"<REUTERS\b([^>]*)>(.*?)</REUTERS>", re.S)
FIELD = {name: re.compile(rf"<{name}>(.*?)</{name}>", re.S) for name in ("TITLE", "BODY", "DATE")}
NEWID = re.compile(r'NEWID="(\d+)"')
# "26-FEB-1987 15:01:01.79", but also " 3-MAR-1987 09:17:32.30" and "3-MAR-1987  09:15:05.40": a
# fixed-width slice left a third of the documents (every day 1-9 of a month) undated.
DATE = re.compile(r"(\d{1,2}-[A-Za-z]{3}-\d{4})\s+(\d{2}:\d{2}:\d{2})")


def reuters_articles(folder: Path = REUTERS_DIR):
    from qa.errors import IngestError
    from qa.ingest import IngestReport, Skipped, make_article

    report = IngestReport()
    for path in sorted(folder.glob("*.sgm"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0)):
        text = path.read_bytes().decode("latin-1")
        for match in DOC.finditer(text):
            attrs, doc = match.groups()
            newid = NEWID.search(attrs)
            origin = f"{path.name}#{newid.group(1) if newid else '?'}"
            fields = {k: html.unescape(m.group(1)).strip() if (m := rx.search(doc)) else "" for k, rx in FIELD.items()}
            body = fields["BODY"].replace("\x03", "").strip()
            if not body:
                report.skipped.append(Skipped(origin, "no BODY"))
                continue
            try:
                day_time = DATE.search(fields["DATE"])
                published = datetime.strptime(" ".join(day_time.groups()), "%d-%b-%Y %H:%M:%S").isoformat()
            except (AttributeError, ValueError):  # no date, or not a real one
                published = None
            try:
                report.articles.append(make_article(
                    title=" ".join(fields["TITLE"].split()) or body.split("\n", 1)[0][:120],
                    text=re.sub(r"[ \t]+", " ", body), published=published, source="Reuters",
                    origin=origin, explicit_id=f"reuters-{newid.group(1)}" if newid else None,
                ))
            except IngestError as exc:
                report.skipped.append(Skipped(origin, str(exc)))
    return report


def bbc_articles(folder: Path = BBC_DIR):
    from qa.ingest import ingest_paths

    return ingest_paths([folder / t for t in TOPICS if (folder / t).is_dir()])
