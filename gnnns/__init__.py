"""gnnns: knowledge-graph completion on PyTorch Geometric, built around negative sampling."""

__version__ = "0.1.0"
