"""Where a split's unreached answers are: for each answerable question whose answer is in
none of the candidates the reader read (per `qa fit`'s saved readings), the rank of the
first retrieved passage that holds it and of the first sentence that does in the
prefilter's order. Tells retrieval's misses from the prefilter's.
Run: .venv/bin/python studies/miss_ranks.py reports/trained7/readings-select.jsonl select
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.config import load_config  # noqa: E402
from qa.embed import load_encoder  # noqa: E402
from qa.lab import squad  # noqa: E402
from qa.lab.eval import holds  # noqa: E402
from qa.lab.fit import load_records  # noqa: E402
from qa.read import load_reader  # noqa: E402

SQUAD = ROOT.parent / "shared" / "benchmarks" / "squad2-dev" / "dev-v2.0.json"
SEARCHED = 200  # passages searched, to find how far down the answer's is

if __name__ == "__main__":
    readings, split = Path(sys.argv[1]), sys.argv[2]
    config = load_config()
    candidates = config.reader_candidates
    missing = {r.question for r in load_records(readings) if r.kind == "yes" and not r.labels[:candidates].any()}
    with tempfile.TemporaryDirectory() as work:
        for qa, items in squad.squad_split_runs(config, load_encoder(config), load_reader(config), SQUAD, split,
                                                Path(work), off_corpus=0):
            for it in (it for it in items if it.answerable and it.question in missing):
                q = qa.prepare(it.question)
                found = qa.retriever.search(q.query, q.vector, SEARCHED)
                passage = next((i + 1 for i, p in enumerate(found) if holds(p.text, it.answers)), None)
                read = found[:max(config.top_k, config.read_passages)]
                texts = [qa.answerer._reader_text(c.sid) for c in qa.answerer.score(q, read)]
                sentence = next((i + 1 for i, t in enumerate(texts) if holds(t, it.answers)), None)
                print(f"passage {passage or '-':>4}  sentence {sentence or '-':>3} of {len(texts):3}  {it.question}", flush=True)
