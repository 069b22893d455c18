"""Data/decision stage: redact identity cues (names) before a model sees a text."""

from __future__ import annotations

from dataclasses import replace

from uim_sim.mitigate.base import Mitigation
from uim_sim.schema import Strict
from uim_sim.worlds.stages import Stages


class RedactionParams(Strict):
    placeholder: str = "Candidate"


class NameRedaction(Mitigation):
    """Replace every identity span (for hiring: the applicant's name) with a neutral
    placeholder, in the adaptation data and in every text scored. "Blind" screening,
    the textbook response to Bertrand & Mullainathan (2004)."""

    name = "name_redaction"
    stage = "data"
    hook = "prepare_text"
    summary = (
        "replaces identity spans (names) by a placeholder in adaptation data and every scored text"
    )
    note = (
        "removes the name from every text the model sees: in an audit whose resume pairs "
        "differ only by the name, parity follows by construction"
    )
    Params = RedactionParams

    def apply(self, stages: Stages) -> Stages:
        inner = stages.prepare_text
        placeholder = self.params.placeholder

        def prepare_text(text, identity_spans):
            text = inner(text, identity_spans)
            for span in identity_spans:
                text = text.replace(span, placeholder)
                if span[:1].islower():  # also opening a sentence: "Gay people are…"
                    text = text.replace(span[:1].upper() + span[1:], placeholder)
            return text

        return replace(stages, prepare_text=prepare_text)
