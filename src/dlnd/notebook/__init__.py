"""dlnd in Jupyter: the IPython magics (:mod:`dlnd.notebook.magics`, ``%load_ext dlnd``), the
first cell every lesson notebook shares (:mod:`dlnd.notebook.lessons`) and running the
notebooks top to bottom (:mod:`dlnd.notebook.execute`)."""
