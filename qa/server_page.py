"""The chat page: its HTML, script, styles and icon, from the shipped `web/` folder."""

from __future__ import annotations

from flask import Blueprint, send_from_directory

from .config import shipped

WEB_DIR = shipped("web", "web")

page = Blueprint("page", __name__)


@page.get("/")
def index():
    return send_from_directory(WEB_DIR, "index.html")


@page.get("/favicon.ico")
def favicon():
    return send_from_directory(WEB_DIR, "favicon.svg", mimetype="image/svg+xml")


@page.get("/web/<path:name>")
def web_file(name: str):
    return send_from_directory(WEB_DIR, name)
