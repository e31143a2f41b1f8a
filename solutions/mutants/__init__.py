"""Known-wrong implementations (mutants): one common mistake each, for tests and diagnosis."""
