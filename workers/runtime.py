"""The process-wide runtime the worker's jobs share: settings, the database engine, the encoder, the
nearest-neighbour indexes, each queue's active learned scorer and the LLM sampler.

It is built once (``workers.main`` preloads it; tests install their own with ``use_runtime``) and
every heavy part is loaded on first use, so importing this module connects to nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rq import Queue, get_current_job
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core import learned
from service import queueing
from service.settings import Settings, get_settings
from service.storage import scorers
from service.storage.db import engine_for
from workers.clients import Embedder, get_embedder
from workers.llm import OpenAISampler, Sampler
from workers.neighbours import Neighbours


def make_sampler(settings: Settings) -> OpenAISampler:
    """The self-consistency sampler for the configured OpenAI-compatible endpoint."""
    return OpenAISampler(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key,
        timeout=settings.llm_timeout_seconds,
        max_retries=settings.llm_max_retries,
        max_tokens=settings.llm_max_tokens,
        concurrency=settings.llm_concurrency,
    )


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    #: Each queue's active learned scorer, loaded once per version (``current_models``).
    models: dict[str, learned.LearnedModel] = field(default_factory=dict)
    _embedder: Embedder | None = field(default=None, init=False, repr=False)
    _sampler: Sampler | None = field(default=None, init=False, repr=False)
    _neighbours: Neighbours | None = field(default=None, init=False, repr=False)
    _rounds_since_save: int = field(default=0, init=False)

    @property
    def index_dir(self) -> Path:
        return self.settings.data_dir / "index"

    @property
    def embedder(self) -> Embedder:
        """The sentence encoder, loaded on first use."""
        if self._embedder is None:
            self._embedder = get_embedder(
                self.settings.embedding_model_path, self.settings.embedding_batch_size
            )
        return self._embedder

    @property
    def sampler(self) -> Sampler:
        """The LLM sampler for self-consistency, made on first use."""
        if self._sampler is None:
            self._sampler = make_sampler(self.settings)
        return self._sampler

    def neighbours(self) -> Neighbours:
        """The nearest-neighbour indexes, opened from disk (or rebuilt from the database) on first use."""
        if self._neighbours is None:
            self._neighbours = Neighbours.open(
                self.index_dir, self.embedder.dimension, self.settings.novelty_window, self.engine
            )
        return self._neighbours

    def save_neighbours(self, every: int = 20) -> None:
        """Persist the indexes every few rounds, so a restarted worker only catches up."""
        self._rounds_since_save += 1
        if self._neighbours is not None and self._rounds_since_save >= every:
            self._neighbours.save(self.index_dir)
            self._rounds_since_save = 0

    def current_models(self, session: Session) -> dict[str, learned.LearnedModel]:
        """Queue -> its active learned scorer, each loaded once per version."""
        active = scorers.active_versions(session)
        for queue, version in active.items():
            cached = self.models.get(queue)
            if cached is None or cached.version != version:
                row = scorers.active_model(session, queue=queue)
                if row is not None:
                    self.models[queue] = learned.LearnedModel.loads(row.blob)
        for queue in set(self.models) - set(active):
            del self.models[queue]
        return dict(self.models)

    def work_queue(self) -> Queue:
        """The RQ queue follow-up work goes on: the current job's connection, else a new one."""
        job = get_current_job()
        connection = job.connection if job is not None else queueing.redis_connection(self.settings)
        return queueing.work_queue(connection, self.settings)


_runtime: Runtime | None = None


def use_runtime(rt: Runtime | None) -> None:
    """Install the runtime the jobs of this process use (None: build from the environment)."""
    global _runtime
    _runtime = rt


def runtime() -> Runtime:
    """This process's runtime, built from the environment on first use."""
    global _runtime
    if _runtime is None:
        settings = get_settings()
        _runtime = Runtime(settings=settings, engine=engine_for(settings))
    return _runtime
