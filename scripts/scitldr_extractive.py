"""Run the extractive summarisers of page 6.3 (section 6.3.1) on all of SciTLDR-A dev and store their scores.

    python scripts/scitldr_extractive.py                               # the committed run: 619 papers, ~10 min
    python scripts/scitldr_extractive.py --steps 3 --out /tmp/s.pt     # a quick check: 3 papers

For every dev paper (``--steps N``: the first N papers only) Lead-1, the MiniLM-centroid sentence and
the extractive oracle (wmbook.lab.summarize.summarise_dev) with their max ROUGE-1/2/L over the gold
TLDRs (rouge-score, stemming on), and the ROUGE-1 of the abstract's first words at the compression
ratios of wmbook.lab.summarize.RATIOS. Deterministic (no randomness; --seed is not used). Writes
scitldr_extractive.pt and its JSON log and prints both sha256s: record them as SCITLDR_SHA256 and
SCITLDR_LOG_SHA256 in wmbook/lab/summarize.py. WMBOOK_DATA_DIR may point at the data.
"""
from __future__ import annotations

import platform
import sys
import time

import torch
from _common import parse, report_written, script_parser  # scripts/_common.py

from wmbook.data.loaders import load_scitldr
from wmbook.lab.summarize import (RATIOS, SCITLDR_FILE, SummaryRecipe, compression_curve, minilm_embedder,
                                  save_summaries, summarise_dev)


def parser():
    """The command line; its defaults are the committed run's."""
    return script_parser(__doc__, steps=None, out=SCITLDR_FILE, steps_help="papers to summarise (the first N)")


def main(argv: list[str] | None = None) -> int:
    args = parse(parser(), argv)
    papers = load_scitldr()["dev"][:args.steps]
    t0 = time.perf_counter()
    results = summarise_dev(papers, minilm_embedder())
    curve = compression_curve(papers, RATIOS)
    seconds = time.perf_counter() - t0
    print(f"{len(papers)} papers in {seconds:.0f} s", flush=True)
    extra = {"seconds": round(seconds, 1), "threads": args.threads, "n_papers": len(papers),
             "torch": torch.__version__, "python": platform.python_version()}
    sha = save_summaries(args.out, results, curve, SummaryRecipe(n_papers=args.steps), extra)
    report_written(args.out, sha)
    return 0


if __name__ == "__main__":
    sys.exit(main())
