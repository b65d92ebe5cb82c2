"""The lab: eval harnesses, SQuAD splits, fitting, training, benchmarks. It imports the
product (everything else in `qa`); the product never imports it (import-linter checks)."""
