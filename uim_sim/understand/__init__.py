"""Understand, the U of UIM: corpus cards with inheritance knobs (`cards`), the corpus
generator (`corpus`), the forge that pre-trains checkpoints on them (`forge`), probes
of what any checkpoint inherited (`probe`) and the label-noise study (`label_noise`).
Imports lfm and vocab, never a world."""
