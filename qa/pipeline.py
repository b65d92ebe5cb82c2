"""The question path, top to bottom: prepare the question (`qa.question`: checked, put
plainly, made standalone, embedded once, its facts), retrieve, compose.

`QA` holds what a running service keeps loaded (encoder, index, retriever, answerer);
the CLI, the HTTP server and the evals all ask through it, so they answer alike.
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits

from .answer import Answerer
from .config import Config
from .embed import Encoder, load_encoder
from .index import expected_settings
from .question import Question, check_history, check_text, help_reply, plain, prepare
from .read import Reader, load_reader
from .retrieve import Retriever
from .scoring import ReaderModel
from .store import Store, open_store
from .types import Answer, BadQuestion, Passage, Stopwatch


class QA:
    def __init__(self, config: Config, encoder: Encoder, index: Store, reader: Reader, model: ReaderModel | None = None):
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
        self.lexicon = lexicon = index.lexicon()
        self.retriever = Retriever(index, lexicon, config.candidates, config.rrf_k)
        self.answerer = Answerer(index, lexicon, encoder, reader, model, config)

    @classmethod
    def load(cls, config: Config, encoder: Encoder | None = None, reader: Reader | None = None,
             model: ReaderModel | None = None) -> QA:
        encoder = encoder or load_encoder(config)
        expected = expected_settings(config, encoder.model_id, encoder.weights_sha256, encoder.dim)
        return cls(config, encoder, open_store(config, expected), reader or load_reader(config), model)

    def prepare(self, question: str, history: list[dict] | None = None, watch: Stopwatch | None = None) -> Question:
        """The question as it is searched first (see `readings` for a follow-up's second reading)."""
        return self.readings(question, history, watch)[0]

    def readings(self, question: str, history: list[dict] | None = None,
                 watch: Stopwatch | None = None) -> list[Question]:
        return prepare(question, history, self.lexicon, self.encoder, self.config, watch)

    def ask(self, question: str, history: list[dict] | None = None, top_k: int | None = None) -> Answer:
        watch = Stopwatch()
        k = self._check_count(top_k, "top_k") or self.config.top_k
        asked = check_text(question, "question", self.config.max_question_chars)
        if (reply := help_reply(asked)) is not None:  # nothing to search: `query` stays empty
            check_history(history, self.config.max_history_turns)
            return Answer.refusal(asked, "", reply, index_version=self.index_version)
        # A follow-up that may or may not lean on the conversation is read both ways, and the
        # answer the reader is surer of is kept: its query says which reading that was.
        # Where neither reading answers, the question is said to have been searched as typed,
        # not with a subject it never leaned on.
        answers = [self._answer(q, k, watch) for q in self.readings(question, history, watch)]
        answer = max([a for a in answers if not a.abstained] or answers[:1], key=lambda a: a.confidence)
        answer.timings, answer.index_version = watch.ms, self.index_version
        return answer

    def _answer(self, q: Question, k: int, watch: Stopwatch) -> Answer:
        passages = self.retriever.search(q.query, q.vector, max(k, self.config.read_passages))
        watch.lap("search")
        answer = self.answerer.compose(q, passages, k, watch)
        watch.lap("compose")
        return answer

    @property
    def index_version(self) -> str:
        """The generation of the index this QA answers from (the manifest's `generation`)."""
        return str(self.index.manifest.get("generation", ""))

    def search(self, query: str, k: int = 5) -> list[Passage]:
        query = plain(check_text(query, "query", self.config.max_question_chars), self.lexicon)
        k = self._check_count(k, "k") or 5
        return self.retriever.search(query, self.encoder.encode([query])[0], k)

    @staticmethod
    def _check_count(value, name: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 50:
            raise BadQuestion(f"{name} must be a whole number from 1 to 50.")
        return value
