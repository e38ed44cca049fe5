"""Generative adversarial networks, measured: the course's MNIST GAN, DCGAN, FID in the
feature space of a classifier trained by dlnd, and the batch-norm and weight-initialisation
lessons that DCGAN rests on.

- :mod:`dlnd.generative.models`: generators (which know how to draw from their latent
  space) and discriminators;
- :mod:`dlnd.generative.training`: one GAN update (D, then G) as a task of the shared loop;
- :mod:`dlnd.generative.judge`: FID, mode coverage and the real-data floor;
- :mod:`dlnd.generative.figures`: sample grids, the animation, curves, interpolations;
- :mod:`dlnd.generative.nearest`: whether samples copy training images (nearest neighbours);
- :mod:`dlnd.generative.lessons`: the batch-norm and weight-initialisation comparisons;
- :mod:`dlnd.generative.recipes`: ``gan-mnist``, ``dcgan``, ``batch-norm``, ``weight-init``;
- :mod:`dlnd.generative.commands`: ``dlnd sample``.
"""
