"""Offline data sets: bundled (scikit-learn digits) or generated deterministically from a seed.

One module per data set; notebooks, specs and tests all import from here."""
