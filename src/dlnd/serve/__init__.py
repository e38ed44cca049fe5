"""Deployment: export trained models (ONNX, TorchScript + a JSON model card) and serve them.

- :mod:`dlnd.serve.export`     checkpoint -> ``model.onnx`` (or TorchScript) + ``model_card.json``
- :mod:`dlnd.serve.preprocess` an upload, a base64 image or a pixel array -> model input
- :mod:`dlnd.serve.batching`   many single requests -> one forward pass (micro-batching)
- :mod:`dlnd.serve.registry`   the served models, one loader per task type
- :mod:`dlnd.serve.classifier` the image-classification task
- :mod:`dlnd.serve.app`        the FastAPI application (REST API + the web page)

The server needs the ``serve`` extra (``pip install 'dlnd[serve]'``); it runs models with
ONNX Runtime, so serving exported or demo models needs no PyTorch code at all.
"""
