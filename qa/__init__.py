"""News QA: extractive, cited question answering over news articles.

The package reads like the pipeline: ingest → chunk → embed → store → retrieve → read → answer,
then the surfaces (cli, app).
"""

__version__ = "0.1.0"
