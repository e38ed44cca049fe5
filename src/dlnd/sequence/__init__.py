"""Sequence models and their recipes: word embeddings, sentence classifiers, recurrent
networks over text."""
