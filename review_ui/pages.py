"""Rendering for the review pages: one Jinja2 environment, the shared page context, error pages.

Model output is untrusted text: templates autoescape everything and never mark it safe.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader

from core.reasons import evidence_text, ordinal, percentile_text
from service.auth import Permission, Principal
from service.domain_workbench import VerdictIn

HERE = Path(__file__).parent
# Autoescape everywhere: LLM output is untrusted and must never become live HTML.
templates = Jinja2Templates(env=Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True))


templates.env.filters["ordinal"] = ordinal
# Drivers are written as the pick's reason writes them, so the page and the reason agree.
templates.env.filters["percentile"] = percentile_text
templates.env.filters["evidence"] = evidence_text


def principal_of(request: Request) -> Principal | None:
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """A full page; with the principal, its CSRF token and its permissions in every template."""
    principal = principal_of(request)
    page = {
        "principal": principal,
        "csrf_token": principal.csrf_token if principal is not None else "",
        "can": {p.value: principal is not None and principal.can(p) for p in Permission},
        **context,
    }
    response = templates.TemplateResponse(request, name, page, status_code=status_code)
    if request.headers.get("hx-request"):
        # htmx swapped this page in (after a redirect, too): the address bar shows where we are;
        # a page answering a form post or an error leaves it alone (reloading must not re-post).
        here = str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
        response.headers["HX-Push-Url"] = here if request.method == "GET" and status_code == 200 else "false"
    return response


def render_error(request: Request, status_code: int, error: dict[str, Any]) -> HTMLResponse:
    """The HTML face of the error envelope, for people browsing the review pages."""
    return render(request, "error.html", {"status_code": status_code, "error": error}, status_code)


def verdict_form(
    verdict: str = Form(...),
    categories: list[str] = Form([]),
    correction: str = Form(""),
    note: str = Form(""),
) -> VerdictIn:
    """The verdict fields of a form (the reviewer's, or an admin's ruling), not yet checked."""
    return VerdictIn(verdict=verdict, categories=categories, correction=correction or None, note=note or None)


VerdictFormDep = Annotated[VerdictIn, Depends(verdict_form)]


def real_correction(submitted: VerdictIn, response: str) -> VerdictIn:
    """The editor starts with the original response: unchanged text is no correction."""
    if (submitted.correction or "").strip() == response.strip():
        return replace(submitted, correction=None)
    return submitted


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def local_path(url: str | None, default: str = "/ui/") -> str:
    """Only redirect within the review pages (never to another site after signing in)."""
    if not url:
        return default
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui") or url.startswith("//"):
        return default
    return url
