"""review-router-client: post LLM outputs to a review-router instance without blocking or breaking
the application. ``Client``/``AsyncClient`` buffer and batch in the background; ``wrap_openai``
records every chat completion an OpenAI client makes."""

from review_router_client._client import AsyncClient, Client
from review_router_client._models import Output
from review_router_client._openai import wrap_openai
from review_router_client._sender import SenderStats

__version__ = "0.1.0"
__all__ = ["AsyncClient", "Client", "Output", "SenderStats", "__version__", "wrap_openai"]
