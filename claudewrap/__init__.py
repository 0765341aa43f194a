"""claudewrap: see what your `claude` CLI use costs."""

__version__ = "0.1.0"


def child_env() -> dict[str, str]:
    """The environment for a detached ``python -m claudewrap....`` of ours: this one,
    with the folder this package is in first on PYTHONPATH, so that the child runs
    this same claudewrap whatever its working directory makes of the name."""
    import os

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    return env
