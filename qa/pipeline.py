"""The question path, top to bottom: check the question, put it plainly, embed it once,
retrieve, compose.

`QA` holds what a running service keeps loaded (encoder, index, retriever, answerer);
the CLI, the HTTP server and the evals all ask through it, so they answer alike.
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits

from .answer import Answerer
from .config import Config
from .embed import Encoder, load_encoder
from .index import Index, expected_settings, load_index
from .read import Reader, ReaderModel, load_reader
from .retrieve import Retriever, standalone_query
from .text import Lexicon, unframed
from .types import Answer, BadQuestion, Passage, Stopwatch


class QA:
    def __init__(self, config: Config, encoder: Encoder, index: Index, reader: Reader, model: ReaderModel | None = None):
        # The question path's own arithmetic is on small matrices; OpenBLAS worker threads
        # gained nothing there, and spun on the two cores after each product, taking the
        # reader from 106 to 144 ms p50 on a SQuAD index. This is process-wide: a process
        # that answers questions keeps its cores for the models.
        threadpool_limits(1, user_api="blas")
        self.config = config
        self.encoder = encoder
        self.index = index
        self.reader = reader
        model = model or ReaderModel.load()
        self.lexicon = lexicon = Lexicon([index.sentence_text(i) for i in range(len(index.sentences))],
                          [d.text for d in index.documents.values()])
        self.retriever = Retriever(index, lexicon, config.candidates, config.rrf_k)
        self.answerer = Answerer(index, lexicon, encoder, reader, model, config)

    @classmethod
    def load(cls, config: Config, encoder: Encoder | None = None, reader: Reader | None = None,
             model: ReaderModel | None = None) -> QA:
        encoder = encoder or load_encoder(config)
        expected = expected_settings(config, encoder.model_id, encoder.weights_sha256, encoder.dim)
        return cls(config, encoder, load_index(config.index_dir, expected), reader or load_reader(config), model)

    def ask(self, question: str, history: list[dict] | None = None, top_k: int | None = None) -> Answer:
        watch = Stopwatch()
        question = self._check(question, "question")
        history = self._check_history(history)
        k = self._check_count(top_k, "top_k") or self.config.top_k
        query = standalone_query(self._plain(question), [{**turn, "question": self._plain(turn["question"])} for turn in history])
        watch.lap("prepare")
        q_vecs, (q_tokens,) = self.encoder.encode_tokens([query])  # one pass gives both
        watch.lap("embed")
        passages = self.retriever.search(query, q_vecs[0], max(k, self.config.read_passages))
        watch.lap("search")
        answer = self.answerer.compose(question, query, q_vecs[0], q_tokens, passages, k, watch)
        watch.lap("compose")
        answer.timings = watch.ms
        return answer

    def search(self, query: str, k: int = 5) -> list[Passage]:
        query = self._plain(self._check(query, "query"))
        k = self._check_count(k, "k") or 5
        return self.retriever.search(query, self.encoder.encode([query])[0], k)

    def _plain(self, question: str) -> str:
        """The question as the model and the name checks should read it: no polite frame,
        typos mended, a question typed in lower case given the corpus's capitals for its
        names. Earlier turns get the same, for the subjects follow-ups borrow."""
        question = self.lexicon.respell(unframed(question))
        # The scorer was fitted on questions that end in "?", and MiniLM reads the mark.
        return question if question.rstrip()[-1:] in ("?", ".", "!") else question.rstrip() + "?"

    def _check(self, text, what: str) -> str:
        if not isinstance(text, str) or not text.strip():
            raise BadQuestion(f"The {what} is empty. Type a {what} in words.")
        if len(text) > self.config.max_question_chars:
            raise BadQuestion(
                f"The {what} is {len(text)} characters long; the limit is {self.config.max_question_chars}. Shorten it."
            )
        return text.strip()

    def _check_history(self, history) -> list[dict]:
        if history is None:
            return []
        if not isinstance(history, list) or not all(
            isinstance(t, dict) and isinstance(t.get("question"), str) and isinstance(t.get("answer", ""), str)
            for t in history
        ):
            raise BadQuestion('history must be a list of {"question": "...", "answer": "..."} objects.')
        if len(history) > self.config.max_history_turns:
            raise BadQuestion(
                f"history has {len(history)} turns; the limit is {self.config.max_history_turns}. Send only the latest turns."
            )
        return history

    @staticmethod
    def _check_count(value, name: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 50:
            raise BadQuestion(f"{name} must be a whole number from 1 to 50.")
        return value
