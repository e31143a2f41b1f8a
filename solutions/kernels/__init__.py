"""Reference kernels: the single source of every right answer."""
