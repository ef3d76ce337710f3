"""What every server-rendered page shares: the layout, the navigation, times in French.

One base template (:func:`layout`) and one navigation bar (:func:`navigation`), so that the
patient's pages and any other side of the demo (the professional's, say) look and behave
alike: a link to skip to the content, the demo banner, a ``<main>`` with the page's only
``<h1>``, the current page marked with ``aria-current``, no script at all.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo

import attrs
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ._problems import SECURITY_HEADERS

__all__ = [
    "PARIS",
    "NavLink",
    "csrf_field",
    "e",
    "layout",
    "navigation",
    "post_button",
    "redirect",
    "when",
]

PARIS: Final = ZoneInfo("Europe/Paris")
e = html.escape


def when(moment: datetime | date | None) -> str:
    """A date, or a time in Paris, as French readers write them."""
    if moment is None:
        return ""
    if isinstance(moment, datetime):
        return moment.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")
    return moment.strftime("%d/%m/%Y")


@attrs.frozen
class NavLink:
    """One entry of the navigation bar.

    :param section: a name for the entry; the page whose *current* is this name marks it.
    """

    href: str
    label: str
    section: str


def csrf_field(token: str) -> str:
    """The hidden field every form that changes something carries."""
    return f'<input type="hidden" name="csrf_token" value="{e(token)}">'


def post_button(action: str, label: str, csrf: str, *, button_id: str = "") -> str:
    """A one-button form that posts to *action* (an inline block)."""
    ident = f' id="{e(button_id)}"' if button_id else ""
    return (
        f'<form method="post" action="{e(action)}" class="inline">{csrf_field(csrf)}'
        f'<button type="submit"{ident}>{e(label)}</button></form>'
    )


def navigation(
    links: Sequence[NavLink],
    *,
    current: str,
    csrf: str,
    label: str = "Navigation principale",
    logout: str = "/logout",
) -> str:
    """The navigation bar: the links, the current one marked, and the logout button.

    :param logout: where the logout button posts (each side of the demo has its own).
    """
    items = "".join(
        f'<li><a href="{e(link.href)}" id="nav-{e(link.section)}"'
        + (' aria-current="page"' if link.section == current else "")
        + f">{e(link.label)}</a></li>"
        for link in links
    )
    return (
        f'<nav aria-label="{e(label)}"><ul>{items}</ul>'
        f'<form method="post" action="{e(logout)}" class="inline">'
        f'{csrf_field(csrf)}<button type="submit" id="logout">Se déconnecter</button></form>'
        "</nav>"
    )


def layout(
    title: str,
    body: str,
    *,
    nav: str = "",
    status: int = 200,
    csp: str | None = None,
    context: str = "",
) -> Response:
    """A whole page: *body* (already escaped HTML) under the page's ``<h1>`` *title*.

    :param nav: the navigation bar (:func:`navigation`), if the visitor is logged in.
    :param csp: a Content-Security-Policy instead of the default one (which allows no
        script, no frame, styles and images from the site only).
    :param context: a line shown above the title (whose space is open, for instance).
    """
    headers = dict(SECURITY_HEADERS)
    if csp is not None:
        headers["content-security-policy"] = csp
    page = f"""<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} · monespace (démo)</title>
<link rel="stylesheet" href="/static/style.css">
</head>
<body>
<a class="skip" href="#contenu">Aller au contenu</a>
<header>
<p class="brand">monespace <span>démonstration</span></p>
{nav}
</header>
<p class="banner" role="note">Démonstration avec des données synthétiques. Ce n'est pas un
hébergement de données de santé (HDS) : n'y mettez aucune donnée réelle.</p>
<main id="contenu" tabindex="-1">
{context}
<h1>{e(title)}</h1>
{body}
</main>
</body>
</html>
"""
    return HTMLResponse(page, status_code=status, headers=headers)


def redirect(location: str) -> Response:
    """Where a form goes after it did its work (303: the browser then GETs *location*)."""
    return RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)
