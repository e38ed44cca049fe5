"""dlnd: a hands-on deep-learning workbench.

From-scratch NumPy networks (``dlnd.scratch``), one PyTorch trainer (``dlnd.trainer``),
vision recipes (``dlnd.vision``), a data layer with checksums (``dlnd.data``) and a model
server (``dlnd.serve``), all reachable from the ``dlnd`` command line.
"""

__version__ = "0.1.0"
