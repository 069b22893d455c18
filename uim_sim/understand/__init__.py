"""Understand, the U of UIM: corpus cards with inheritance knobs (`cards`), the corpus
generator (`corpus`), the forge that pre-trains checkpoints on them (`forge`), and
probes of what any checkpoint inherited (`probe`). Imports lfm and vocab, never a
world."""
