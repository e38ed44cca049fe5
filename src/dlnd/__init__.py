"""dlnd: a hands-on deep-learning workbench.

From-scratch NumPy networks (``dlnd.scratch``), one PyTorch trainer (``dlnd.trainer``),
vision recipes (``dlnd.vision``), a data layer with checksums (``dlnd.data``) and a model
server (``dlnd.serve``), all reachable from the ``dlnd`` command line.
"""

__version__ = "0.1.0"


def run_recipe(name: str, **options):
    """Train a recipe from Python; see :func:`dlnd.launch.run_recipe`."""
    from dlnd.launch import run_recipe as _run_recipe

    return _run_recipe(name, **options)


def load_ipython_extension(shell):
    """``%load_ext dlnd``: the ``%dlnd`` and ``%%dlnd_fit`` magics (see :mod:`dlnd.notebook`)."""
    from dlnd.notebook.magics import load_ipython_extension as _load

    _load(shell)
