"""Named prompt templates: a system prompt, generation options, a default model and attachments
saved under one name, used with ``ask -t NAME``, ``chat -t NAME`` and ``/template NAME``.

Where templates come from, and who wins a name:

* **the user's files**, one JSON file per template in ``<config>/templates/NAME.json`` (the same
  folder and format as ``settings.json``: readable, editable by hand, written atomically). A file
  is checked when it is read; a broken one is a one-line error naming the file and the field, and
  never stops the other templates from working;
* **plugins** (built-ins first, then third-party ones in load order) through the
  ``register_templates(register)`` hook. As with backends and tasks, the first registration of a
  name wins: a plugin never takes a name a built-in or an earlier plugin has (the clash is reported
  where plugin errors are, and ignored).

A user's file beats a plugin's template of the same name, *for that user*: installing a plugin
must never change what ``ask -t mine`` does, and a user may adapt a plugin's template by saving
their own under its name (``templates edit NAME`` does exactly that). The listing shows which
plugin's template a file hides, and removing the file brings the plugin's back.

Explicit flags win over the template, field by field; :meth:`Template.apply` is the one place that
merges them, so the command line and the chat app behave the same.
"""

from __future__ import annotations

import difflib
import json
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lmassist.config import atomic_write_text, paths, valid_name
from lmassist.errors import LMAssistError
from lmassist.generation import GenerationOptions, parse_option_pairs
from lmassist.plugins import PluginManager, get_manager

SUFFIX = ".json"
FIELDS = ("description", "system", "model", "options", "attachments")
"""The keys of a template file, in the order they are written."""

MAX_FILE_BYTES = 1 << 20
USER = "user"
"""The ``origin`` of a template read from the user's own file."""


def templates_dir() -> Path:
    """The folder of the user's template files (``lmassist templates path``)."""
    return paths().config / "templates"


def template_file(name: str) -> Path:
    return templates_dir() / f"{valid_name(name, 'template name')}{SUFFIX}"


@dataclass(frozen=True)
class Applied:
    """What a turn runs with once a template and the explicit flags are merged (see :meth:`Template.apply`).

    ``options`` are *changes* (field -> value, as :func:`lmassist.generation.parse_option_pairs`
    returns them), to put over the loaded model's defaults with :meth:`generation_options`.
    ``model`` is None when neither named one: the caller's usual default applies.
    """

    system: str | None
    model: str | None
    options: dict[str, Any]
    attachments: tuple[str, ...]
    template: str | None = None

    def generation_options(self, base: GenerationOptions) -> GenerationOptions:
        return base.replace(**self.options).validate()


@dataclass(frozen=True)
class Template:
    """One named template. ``origin`` is ``"user"`` for a file, else the plugin that registered it;
    ``path`` is the user's file (None for a plugin's); ``hides`` names the plugin whose template of
    the same name this user file takes the place of."""

    name: str
    system: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    model: str | None = None
    attachments: tuple[str, ...] = ()
    description: str = ""
    origin: str = USER
    path: Path | None = None
    hides: str | None = None

    def apply(
        self,
        system: str | None = None,
        model: str | None = None,
        options: Mapping[str, Any] | None = None,
        attachments: Iterable[str] = (),
    ) -> Applied:
        """Merge this template with what the user typed; what was typed wins.

        * ``system``: an explicit ``-s`` replaces the template's system prompt;
        * ``model``: an explicit ``-m`` replaces the template's model (None: the template's, if any);
        * ``options``: merged key by key, explicit values over the template's (an explicit ``stop``
          replaces the template's stop strings). Pass the dict ``parse_option_pairs`` returned;
        * ``attachments``: the template's first, then the explicit ones (a path given twice once).
        """
        merged = {**self.options, **dict(options or {})}
        files = list(dict.fromkeys([*self.attachments, *attachments]))
        return Applied(
            system=system if system is not None else self.system,
            model=model or self.model,
            options=merged,
            attachments=tuple(files),
            template=self.name,
        )

    def to_dict(self) -> dict[str, Any]:
        """The file's content: every field, in order, so a hand edit sees what it may fill in."""
        return {
            "description": self.description,
            "system": self.system,
            "model": self.model,
            "options": dict(self.options),
            "attachments": list(self.attachments),
        }

    def summary(self) -> dict[str, Any]:
        """``templates list --json`` and ``show --json``: the fields plus name, origin and file."""
        return {"name": self.name, **self.to_dict(), "origin": self.origin,
                "path": str(self.path) if self.path else None, "hides": self.hides}


def apply_template(
    name: str | None,
    system: str | None = None,
    model: str | None = None,
    options: Mapping[str, Any] | None = None,
    attachments: Iterable[str] = (),
) -> Applied:
    """``-t NAME`` with the other flags, in one call for every face: with no name, the flags as
    given; with one, :meth:`Template.apply` on :func:`get_template` (one-line error if unknown)."""
    if not name:
        return Applied(system, model, dict(options or {}), tuple(dict.fromkeys(attachments)))
    return get_template(name).apply(system, model, options, attachments)


# -- checking what a file or a plugin holds ---------------------------------------------------------


def _options(value: Any) -> dict[str, Any]:
    """A template's options, checked exactly like ``-O KEY VALUE`` (names, types, ranges); stop
    strings are taken as written (JSON has its own escapes), a list or one string."""
    if not isinstance(value, Mapping):
        raise ValueError("must be an object of option: value, e.g. {\"temperature\": 0.2}")
    pairs: list[tuple[str, str]] = []
    stop: tuple[str, ...] | None = None
    for key, item in value.items():
        if key == "stop":
            stop = (item,) if isinstance(item, str) else item
            if not isinstance(stop, list | tuple) or not all(isinstance(s, str) and s for s in stop):
                raise ValueError("stop: must be a list of non-empty strings")
            continue
        if isinstance(item, bool) or not (item is None or isinstance(item, str | int | float)):
            raise ValueError(f"{key}: {item!r} is not a number")
        pairs.append((str(key), "none" if item is None else str(item)))
    try:
        changes = parse_option_pairs(pairs)
    except LMAssistError as e:
        raise ValueError(str(e)) from None
    if stop is not None:
        changes["stop"] = tuple(stop)
    return changes


def _text(value: Any, one_line: bool = False) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"must be text, got {type(value).__name__}")
    if one_line and ("\n" in value or not value.strip()):
        raise ValueError(f"must be one non-empty line, got {value!r}")
    return value


def _attachments(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError("must be a list of paths (files, folders or globs)")
    if "-" in value:
        raise ValueError("'-' (stdin) cannot be saved in a template; pipe it to the command instead")
    return tuple(value)


_CHECKS = {
    "description": lambda v: _text(v) or "",
    "system": lambda v: _text(v) or None,
    "model": lambda v: _text(v, one_line=True),
    "options": lambda v: _options({} if v is None else v),
    "attachments": _attachments,
}


def from_dict(name: str, data: Any, where: str, origin: str = USER, path: Path | None = None) -> Template:
    """A checked :class:`Template` from a file's or a plugin's mapping; a one-line error names
    ``where`` (the file, or the plugin) and the bad field."""
    try:
        valid_name(name, "template name")
    except LMAssistError as e:
        raise LMAssistError(f"{where}: {e}") from None
    if not isinstance(data, Mapping):
        raise LMAssistError(f"{where}: a template is a JSON object with the fields {', '.join(FIELDS)}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _CHECKS:
            close = difflib.get_close_matches(str(key), FIELDS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known fields: {', '.join(FIELDS)}"
            raise LMAssistError(f"{where}: unknown field {key!r}; {hint}")
        try:
            values[key] = _CHECKS[key](value)
        except ValueError as e:
            raise LMAssistError(f"{where}: field {key!r}: {e}") from None
    if not any(values.get(k) for k in ("system", "model", "options", "attachments")):
        raise LMAssistError(f"{where}: the template sets nothing; give it a system prompt, a model, options "
                            "or attachments")
    return Template(name=name, origin=origin, path=path, **values)


def as_template(obj: Any, plugin: str) -> Template:
    """What a plugin registered, as a checked Template: a ``Template`` or a mapping with a ``name``."""
    if isinstance(obj, Template):
        name, data = obj.name, obj.to_dict()
    elif isinstance(obj, Mapping) and isinstance(obj.get("name"), str):
        name, data = obj["name"], {k: v for k, v in obj.items() if k != "name"}
    else:
        raise LMAssistError(f"not a template (a lmassist.templates.Template or a dict with a name): {obj!r:.80}")
    return from_dict(name, data, f"template {name!r}", origin=plugin)


# -- the user's files -------------------------------------------------------------------------------


def parse_text(name: str, text: str, where: str, path: Path | None = None) -> Template:
    """The template a file's text holds, checked; ``where`` names it in the one-line error."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise LMAssistError(f"{where}: not valid JSON ({str(e).splitlines()[0]})") from None
    return from_dict(name, data, where, path=path)


def read_text(path: Path) -> str:
    """A template file's text; anything but a regular UTF-8 file of at most ``MAX_FILE_BYTES`` (a
    folder, a named pipe that would block, a device, a huge file) is a one-line error naming it."""
    where = f"template file {path}"
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise LMAssistError(f"{where}: not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise LMAssistError(f"{where}: {st.st_size:,} bytes; a template is at most {MAX_FILE_BYTES:,}")
        return path.read_bytes().decode("utf-8")
    except OSError as e:
        raise LMAssistError(f"{where}: cannot be read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise LMAssistError(f"{where}: not UTF-8 text") from None


def read_file(path: Path) -> Template:
    """The template in ``path``, checked; a one-line error naming the file (and the field) if not."""
    return parse_text(path.name.removesuffix(SUFFIX), read_text(path), f"template file {path}", path)


def save(template: Template) -> Path:
    """Write the user's file for ``template`` atomically (a crash leaves the old file or the new one)."""
    path = template_file(template.name)
    atomic_write_text(path, json.dumps(template.to_dict(), indent=2, ensure_ascii=False) + "\n")
    return path


def _user_files() -> list[Path]:
    folder = templates_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(f"*{SUFFIX}") if not p.name.startswith("."))


# -- all of them ------------------------------------------------------------------------------------


@dataclass
class Catalog:
    """Every template by name as the user sees it (their files over plugins'), what each plugin
    registered, and the problems found while reading (broken files by name; plugin problems go to
    the plugin manager, as for backends and tasks)."""

    templates: dict[str, Template] = field(default_factory=dict)
    plugins: dict[str, Template] = field(default_factory=dict)
    broken: dict[str, LMAssistError] = field(default_factory=dict)

    def get(self, name: str) -> Template:
        if name in self.broken:
            raise self.broken[name]
        if name in self.templates:
            return self.templates[name]
        valid_name(name, "template name")
        known = sorted(self.templates)
        close = difflib.get_close_matches(name, known, n=3)
        if close:
            raise LMAssistError(f"unknown template {name!r}; did you mean {', '.join(close)}?")
        listed = f"known templates: {', '.join(known[:8])}{', …' if len(known) > 8 else ''}" if known else "none yet"
        raise LMAssistError(f"unknown template {name!r} ({listed}); create it with: lmassist templates add {name} -s TEXT")


def plugin_templates(manager: PluginManager) -> dict[str, Template]:
    """The templates the plugins registered, first registration of a name kept, the rest reported."""
    found: dict[str, Template] = {}
    for plugin, obj in manager.collect("register_templates"):
        try:
            template = as_template(obj, plugin)
        except LMAssistError as e:
            manager.report(plugin, "register_templates", e)
            continue
        if template.name in found:
            manager.clash(plugin, "register_templates", "template", template.name, found[template.name].origin)
            continue
        found[template.name] = template
    return found


def catalog(manager: PluginManager | None = None) -> Catalog:
    """Read the user's files and ask the plugins; never raises for one bad file or plugin."""
    result = Catalog(plugins=plugin_templates(manager or get_manager()))
    result.templates.update(result.plugins)
    for path in _user_files():
        name = path.name.removesuffix(SUFFIX)
        try:
            template = read_file(path)
        except LMAssistError as e:
            result.broken[name] = e
            result.templates.pop(name, None)
            continue
        hidden = result.plugins.get(name)
        result.templates[name] = replace(template, hides=hidden.origin if hidden else None)
    result.templates = dict(sorted(result.templates.items()))
    return result


def get_template(name: str, manager: PluginManager | None = None) -> Template:
    """The template ``name`` (the user's file before a plugin's), or a one-line error naming close
    matches; a broken file of that name is its own error (never silently the plugin's instead)."""
    return catalog(manager).get(name)


def list_templates(manager: PluginManager | None = None) -> list[Template]:
    """Every usable template, by name. Broken files are left out: :func:`catalog` says which."""
    return list(catalog(manager).templates.values())
