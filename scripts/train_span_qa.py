"""Train the span extractor of page 6.2 (MiniLM, top layer + start/end head) over several seeds.

    python scripts/train_span_qa.py                       # the committed run: 3 seeds (~40 min of CPU, one thread)
    python scripts/train_span_qa.py --seeds 1 --steps 2 --questions 16 --out /tmp/s.pt   # a smoke test

The recipe is wmbook.lab.qa_span.SpanQARecipe. XQuAD's 1,190 English questions (SQuAD v1.1 dev)
are split by article (wmbook.lab.qa_span.article_split): 32 articles train, 16 are held out,
among them the two articles whose paragraphs the SQuAD 2.0 subset uses. MiniLM-L6's embeddings
and first 5 layers stay frozen: their output for every question (train, test and the 626 SQuAD
2.0 questions) is computed once; then, for each of ``--seeds`` seeds (``--seed``, ``--seed`` + 1,
...), a copy of the top layer and a fresh start/end head are trained on the training articles and
the held-out questions, the SQuAD 2.0 questions and (for EM/F1 only) the training questions are answered. Each seed writes its checkpoint
(the trained layer and head in float16, ~3.5 MB; seed 0 to ``--out``, seed s to
``<out stem>_seed<s>.pt``) and a JSON log next to it: the training loss, every held-out and SQuAD
2.0 prediction (text and span score) and EM/F1. With ``--seed 0`` it also writes the dense
retrieval index of section 6.2.2 (MiniLM embeddings of XQuAD's 240 paragraphs and 1,190
questions, float16, ``<out stem>_dense_index.pt``; ``--index-only`` writes just that). Their sha256 go into SPAN_QA_SEED<s>_SHA256 and
SPAN_QA_SEED<s>_LOG_SHA256 in wmbook/lab/qa_span.py. Options: ``--help`` (the shared command line of
scripts/_common.py, plus ``--seeds`` and ``--questions``). WMBOOK_DATA_DIR may point at the data.
"""
from __future__ import annotations

import dataclasses
import platform
import sys
import time

import torch
from _common import parse, report_written, script_parser  # scripts/_common.py

from wmbook.data.checkpoint import file_sha256, save_with_log, seed_file
from wmbook.data.loaders import load_squad
from wmbook.lab.qa_span import (SPAN_QA_FILE, SpanQARecipe, article_split, frozen_hidden, new_span_head,
                                predict_spans, qa_features, span_head_state, squad_scores, train_span_head)
from wmbook.lab.retrieval import DENSE_MAX_LENGTH, build_dense_index, dense_index_file
from wmbook.nn.bert import BertModel, minilm_tokenizer
from wmbook.nn.train import History


def parser():
    """The command line; its defaults are the committed run's."""
    p = script_parser(__doc__, steps=None, out=SPAN_QA_FILE,
                      steps_help=f"training steps per seed (default: {SpanQARecipe.epochs} passes over the training questions)")
    p.add_argument("--seeds", type=int, default=3, help="models to train (default: %(default)s)")
    p.add_argument("--index-only", action="store_true",
                   help="write only the dense retrieval index (MiniLM embeddings of XQuAD's paragraphs and questions)")
    p.add_argument("--questions", type=int, default=None, metavar="N",
                   help="use only the first N training, held-out and SQuAD 2.0 questions (smoke tests; default: all)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parse(parser(), argv)
    t0 = time.perf_counter()
    xquad, squad2 = load_squad(1), load_squad(2)
    test = article_split(xquad, SpanQARecipe.n_test_articles, SpanQARecipe.split_seed,
                         keep_in_test=[e.context for e in squad2])
    train_ex = [e for e, t in zip(xquad, test) if not t]
    test_ex = [e for e, t in zip(xquad, test) if t]
    if args.questions is not None:
        train_ex, test_ex, squad2 = train_ex[:args.questions], test_ex[:args.questions], squad2[:args.questions]
    encoder, tok = BertModel.from_minilm(), minilm_tokenizer()
    if args.seed == 0:  # the dense index does not depend on the seed: written once, beside seed 0's model
        index_out = dense_index_file(args.out)
        passages = list(dict.fromkeys(e.context for e in xquad))
        questions = xquad
        if args.questions is not None:
            passages, questions = passages[:args.questions], xquad[:args.questions]
        p_emb, q_emb = build_dense_index(encoder, tok, passages, [e.question for e in questions], DENSE_MAX_LENGTH)
        index_out.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"passages": p_emb.to(torch.float16), "questions": q_emb.to(torch.float16),
                    "question_ids": [e.id for e in questions], "passage_texts": passages,
                    "max_length": DENSE_MAX_LENGTH}, index_out)
        print(f"wrote {index_out} ({index_out.stat().st_size / 2**20:.2f} MiB, {time.perf_counter() - t0:.0f} s)")
        print(f"index sha256 {file_sha256(index_out)}", flush=True)
    if args.index_only:
        return 0
    print(f"{len(train_ex)} training, {len(test_ex)} held-out and {len(squad2)} SQuAD 2.0 questions", flush=True)
    base = SpanQARecipe()
    n_frozen = len(encoder.layers) - base.n_trained_layers
    feats = {name: qa_features(tok, ex, base.max_length) for name, ex in
             (("train", train_ex), ("test", test_ex), ("squad2", squad2))}
    hidden = {name: frozen_hidden(encoder, f, n_frozen) for name, f in feats.items()}
    print(f"frozen layers' output cached ({time.perf_counter() - t0:.0f} s)", flush=True)
    cut = sum(f.start < 0 for f in feats["train"])
    for seed in range(args.seed, args.seed + args.seeds):
        t1 = time.perf_counter()
        recipe = SpanQARecipe(seed=seed)
        head = new_span_head(encoder, recipe.n_trained_layers, seed)
        history = History()
        train_span_head(head, hidden["train"], feats["train"], recipe, steps=args.steps,
                        log=lambda r: history.log(r["step"], loss=r["loss"]))
        train_seconds = time.perf_counter() - t1
        results = {}
        for name, ex in (("test", test_ex), ("squad2", squad2)):
            preds = predict_spans(head, hidden[name], feats[name], [e.context for e in ex], recipe.max_answer_len)
            res = {"ids": [e.id for e in ex], "text": [p.text for p in preds],
                   "score": [round(p.score, 4) for p in preds]}
            answerable = [e.answers for e in ex if e.answers]
            if answerable:
                s = squad_scores([p.text for p, e in zip(preds, ex) if e.answers], answerable)
                res["em"], res["f1"] = round(100 * float(s["em"].mean()), 4), round(100 * float(s["f1"].mean()), 4)
            results[name] = res
        # the same scores on the training questions: the gap to the held-out ones is what did not generalise
        preds = predict_spans(head, hidden["train"], feats["train"], [e.context for e in train_ex], recipe.max_answer_len)
        s = squad_scores([p.text for p in preds], [e.answers for e in train_ex])
        results["train"] = {"em": round(100 * float(s["em"].mean()), 4), "f1": round(100 * float(s["f1"].mean()), 4)}
        print(f"seed {seed}: loss {history.last('loss'):.3f}, held-out EM {results['test']['em']:.1f} "
              f"F1 {results['test']['f1']:.1f}, training questions F1 {results['train']['f1']:.1f} "
              f"({train_seconds:.0f} s)", flush=True)
        n_params = sum(p.numel() for p in head.parameters())
        out = seed_file(args.out, seed)
        extra = {"n_train": len(train_ex), "n_train_cut": int(cut), "n_test": len(test_ex), "n_squad2": len(squad2),
                 "steps": args.steps, "questions": args.questions, "results": results,
                 "train_seconds": round(train_seconds, 1), "threads": args.threads,
                 "torch": torch.__version__, "python": platform.python_version()}
        payload = {"state": span_head_state(head), "recipe": dataclasses.asdict(recipe), "n_frozen": n_frozen}
        sha = save_with_log(out, payload, history, recipe, n_params, "loss", extra=extra)
        report_written(out, sha)
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
