"""Serve (the surfaces over the pipeline): one server for the chat UI, the embeddable widget and the HTTP API.

    engine   the shared QAService, its lock and index reloads
    ui       the Gradio chat (answer bubbles with highlighted citations)
    api      the FastAPI app (JSON API, security headers) that mounts the UI; `serve(settings)` runs it
"""
