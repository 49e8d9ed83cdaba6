"""natoqa: answer questions from documents, and quote the line that proves it."""

__version__ = "0.1.0"
