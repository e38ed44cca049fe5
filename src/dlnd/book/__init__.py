"""The book: ``dlnd book`` runs every lesson notebook and builds a static site with the
README, the lessons (outputs and figures included) and the API reference, readable offline."""
