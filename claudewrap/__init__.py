"""claudewrap: see what your `claude` CLI use costs."""

__version__ = "0.1.0"
