"""A Jupyter server extension: one link that opens the course in a language, JupyterLab's own menus included.

``/lessonlib/open/fr`` sets JupyterLab's interface language to French for this server's user (the same
settings file that *Settings → Language → Français* writes), then opens the French start notebook;
``/lessonlib/open/en`` does the same in English. JupyterLab's language is a setting of the server, not
of a page: a Binder image shared by the English and the French links cannot choose it, so the French
Binder link opens this path (``?urlpath=lessonlib/open/fr``) and each Binder session, a server of its
own, gets the language its learner clicked.

Scope and limits: it writes one setting (``locale``) of ``@jupyterlab/translation-extension:plugin``
and leaves the file's other settings as they are; the French menus need the language pack
(``jupyterlab-language-pack-fr-FR``, in the requirements). It is switched on by ``binder/postBuild``
and ``make lab`` (``ServerApp.jpserver_extensions``); nothing else loads it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: JupyterLab's locale for each language of the course ("en" is JupyterLab's own default).
LAB_LOCALES = {"en": "en", "fr": "fr_FR"}
SETTINGS_FILE = Path("@jupyterlab") / "translation-extension" / "plugin.jupyterlab-settings"


def set_lab_language(code: str, settings_dir: str | Path) -> Path:
    """Write JupyterLab's interface language ``code`` into the user settings under ``settings_dir``; returns the file.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> path = set_lab_language("fr", folder)
    >>> json.loads(path.read_text())["locale"]
    'fr_FR'
    """
    path = Path(settings_dir) / SETTINGS_FILE
    try:
        current = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # absent, or written by hand with comments (JSON5): only the locale is kept
        current = {}
    current = current if isinstance(current, dict) else {}
    current["locale"] = LAB_LOCALES[code]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
    return path


def _handler_class() -> type:
    from jupyter_server.base.handlers import JupyterHandler
    from tornado import web

    class OpenHandler(JupyterHandler):
        """``GET /lessonlib/open/<language>``: JupyterLab in that language, on the course's start notebook."""

        @web.authenticated
        def get(self, code: str) -> None:
            from jupyterlab.commands import get_user_settings_dir

            from . import course

            set_lab_language(code, get_user_settings_dir())
            start = course.NOTEBOOKS[0].localized_filename(code)
            folder = "notebooks" if code == "en" else f"notebooks/{code}"
            self.redirect(f"{self.base_url}lab/tree/{folder}/{start}")

    return OpenHandler


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "lessonlib.labext"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from jupyter_server.utils import url_path_join

    web_app = serverapp.web_app
    pattern = url_path_join(web_app.settings["base_url"], "/lessonlib/open/(" + "|".join(LAB_LOCALES) + ")")
    web_app.add_handlers(".*$", [(pattern, _handler_class())])
