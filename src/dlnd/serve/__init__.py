"""Deployment: export trained models (ONNX, TorchScript + a JSON model card) and serve them.

- :mod:`dlnd.serve.export`     checkpoint -> ``model.onnx`` (or TorchScript) + ``model_card.json``
- :mod:`dlnd.serve.card`       the model card's file, version and common facts
- :mod:`dlnd.serve.preprocess` an upload, a base64 image or a pixel array -> model input
- :mod:`dlnd.serve.batching`   many single requests -> one forward pass (micro-batching)
- :mod:`dlnd.serve.task`       what every served task has: endpoints, page tab, parse pool
- :mod:`dlnd.serve.tabular_export` a NumPy network -> ONNX graph + a card describing its features
- :mod:`dlnd.serve.classifier` the image-classification task
- :mod:`dlnd.serve.tabular`    the tabular-regression and tabular-classification tasks
- :mod:`dlnd.serve.registry`   the table of tasks and the served models by name
- :mod:`dlnd.serve.app`        the FastAPI application (REST API + the web page)

The server needs the ``serve`` extra (``pip install 'dlnd[serve]'``); it runs models with
ONNX Runtime, so serving exported or demo models imports no PyTorch at all.
"""
