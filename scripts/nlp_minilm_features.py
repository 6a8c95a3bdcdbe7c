"""MiniLM sentence features for page 6.1: Poem Sentiment, and SST-2 dev cut to its first k pieces.

    WMBOOK_DATA_DIR=/work/shared/data python scripts/nlp_minilm_features.py   # all of it
    python scripts/nlp_minilm_features.py --steps 8 --out /tmp/f.pt           # a smoke test

Running MiniLM over the ~1,100 Poem Sentiment verses and over SST-2's 872 dev sentences four
more times (cut to their first 4, 8, 16, 32 word pieces) takes minutes on one busy thread, more
than page 6.1's budget, so the page reads these features instead and recomputes a few of them
to check they are MiniLM's (wmbook.lab.classify.embed). The SST-2 dev features of whole sentences
are already in sst2_minilm_features.pt (scripts/minilm_sst2_features.py).

Nothing is trained or drawn, so the shared command line's options mean: ``--steps N`` embeds
only the first N texts of each set (default: all; a text's features do not depend on N, so
``--steps 8`` reproduces the first 8 rows of the committed file); ``--seed`` is unused (0);
``--threads`` as usual. Writes float16 features + labels and a JSON log and prints the sha256 of
both, to record as NLP_FEATURES_SHA256 and NLP_FEATURES_LOG_SHA256 in wmbook/lab/classify.py.
"""
from __future__ import annotations

import platform
import sys
import time

import torch
from _common import parse, report_written, script_parser  # scripts/_common.py

from wmbook.data.loaders import load_sst2
from wmbook.lab.classify import NLP_FEATURES_FILE, TRUNCATIONS, embed, load_poem_sentiment, save_nlp_features
from wmbook.nn.bert import BertModel, minilm_tokenizer


def parser():
    """The command line; its defaults are the committed run's."""
    return script_parser(__doc__, steps=None, out=NLP_FEATURES_FILE,
                         steps_help="no training here: embed only the first N texts of each set")


def main(argv: list[str] | None = None) -> int:
    args = parse(parser(), argv)
    n = args.steps
    model, tok = BertModel.from_minilm(), minilm_tokenizer()
    t0 = time.perf_counter()
    poem = {}
    for split, rows in load_poem_sentiment().items():
        rows = rows[:n]
        poem[split] = {"features": embed(model, tok, [t for t, _ in rows]),
                       "labels": torch.tensor([y for _, y in rows])}
        print(f"poem {split}: {len(rows)} verses ({time.perf_counter() - t0:.0f} s)", flush=True)
    dev = [s for s, _ in load_sst2()["dev"]][:n]
    first = {}
    for k in TRUNCATIONS:
        first[str(k)] = embed(model, tok, dev, max_pieces=k)
        print(f"sst2 dev, first {k} pieces ({time.perf_counter() - t0:.0f} s)", flush=True)
    log = {"sets": {**{f"poem/{s}": len(v["labels"]) for s, v in poem.items()}, "sst2/dev": len(dev)},
           "truncations": list(TRUNCATIONS), "seconds": round(time.perf_counter() - t0, 1), "threads": args.threads,
           "torch": torch.__version__, "python": platform.python_version()}
    sha = save_nlp_features(args.out, {"poem": poem, "sst2_first": first}, log)
    report_written(args.out, sha)
    return 0


if __name__ == "__main__":
    sys.exit(main())
