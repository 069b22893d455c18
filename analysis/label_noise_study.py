"""Label noise in pre-training → linear probing in- and out-of-domain, and the spectrum.

In the spirit of Chen et al., ICLR 2024 ("Understanding and Mitigating the Label
Noise in Pre-training on Downstream Tasks"): forge ``corpora/label_noise.yaml`` at
several label-noise levels (its supervised part is toxicity labels), then for each
checkpoint measure, on frozen features:

- in-domain linear-probe accuracy: toxicity of template sentences of the
  pre-training family (fresh samples, clean labels);
- out-of-domain linear-probe accuracy: resume quality (latent skill above 0) of
  hiring-world resumes, a task the pre-training labels never saw;
- SVE and LSVR of the in-domain feature matrix.

Forged checkpoints are cached by card hash under OUT/checkpoints.

    .venv/bin/python analysis/label_noise_study.py --out results/label_noise [--noise 0 0.1 0.3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from uim_sim.lfm.engine import get_engine
from uim_sim.understand.cards import load_corpus_card
from uim_sim.understand.corpus import BENIGN_TEMPLATES, IDENTITIES, TOXIC_TEMPLATES
from uim_sim.understand.forge import forge
from uim_sim.understand.probe import linear_probe, spectrum
from uim_sim.vocab.jobs import OCCUPATIONS, ResumeBody
from uim_sim.vocab.names import draw_name

ROOT = Path(__file__).resolve().parents[1]


def in_domain() -> tuple[list[str], np.ndarray]:
    texts, labels = [], []
    for identity in IDENTITIES + ("christian", "asian", "old", "young"):
        for template, label in [(t, 0) for t in BENIGN_TEMPLATES] + [
            (t, 1) for t in TOXIC_TEMPLATES
        ]:
            texts.append(template.format(id=identity))
            labels.append(label)
    return texts, np.array(labels)


def out_of_domain(n: int = 400) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(7)
    occupations = list(OCCUPATIONS)
    texts, labels = [], []
    for i in range(n):
        skill = float(rng.normal())
        body = ResumeBody.from_skill(occupations[i % 4], skill, rng)
        texts.append(body.render(draw_name(("black", "white")[i % 2], "female", rng)))
        labels.append(int(skill > 0))
    return texts, np.array(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "label_noise")
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.1, 0.3])
    parser.add_argument("--card", type=Path, default=ROOT / "corpora" / "label_noise.yaml")
    args = parser.parse_args()
    id_texts, id_labels = in_domain()
    ood_texts, ood_labels = out_of_domain()
    rows = []
    for noise in args.noise:
        card = load_corpus_card(args.card, {"knobs.label_noise": noise})
        folder = args.out / "checkpoints" / f"{card.name}-{card.fingerprint()[:12]}"
        print(f"forging label_noise={noise} → {folder} (cached if present)", flush=True)
        engine = get_engine(str(forge(card, folder)))
        rows.append(
            {
                "label_noise": noise,
                "in_domain_accuracy": linear_probe(engine, id_texts, id_labels),
                "out_of_domain_accuracy": linear_probe(engine, ood_texts, ood_labels),
                **spectrum(engine.embed(id_texts)),
            }
        )
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "label_noise.csv", index=False)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"→ {args.out / 'label_noise.csv'}")


if __name__ == "__main__":
    main()
